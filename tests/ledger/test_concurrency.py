"""Concurrent duplicates from separate connections (as from separate workers) post once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from blindgate.ledger import (
    LedgerError,
    check_ledger,
    post_payment_captured,
    post_payment_pending,
    post_refund,
)
from blindgate.storage.schema import entries
from tests.ledger.helpers import T0, terms


@pytest.mark.postgres
def test_racing_duplicates_and_refunds_post_exactly_once(pg_schema_engine: sa.Engine) -> None:
    from blindgate.storage.migrate import upgrade

    engine = pg_schema_engine
    upgrade(engine)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            with engine.begin() as conn:
                post_payment_pending(conn, terms(), at=T0)
                post_payment_captured(conn, "p1", at=T0)
            with engine.begin() as conn:
                # Eight different refunds of 3000 race for 10000: exactly three fit.
                post_refund(conn, "p1", f"r{index}", 3_000, at=T0)
        except LedgerError as refused:
            errors.append(refused)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    with engine.begin() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                sa.select(entries.c.event_type, sa.func.count()).group_by(entries.c.event_type)
            ).all()
        )
        assert counts == {"PENDING": 1, "CAPTURE": 1, "REFUND": 3}
        assert len(errors) == 5
        assert check_ledger(conn).ok


@pytest.mark.postgres
def test_closing_a_day_under_load_leaves_its_batches_final(pg_schema_engine: sa.Engine) -> None:
    """Postings race the close: none lands in the day after it closed, so its settlement stays true."""
    from datetime import timedelta

    from blindgate.ledger import Cutoff
    from blindgate.settlement import settle_day
    from blindgate.storage.migrate import upgrade

    engine = pg_schema_engine
    upgrade(engine)
    stop = threading.Event()
    posted: list[int] = []

    def poster(worker: int) -> None:
        count = 0
        while not stop.is_set() and count < 200:
            with engine.begin() as conn:
                post_payment_pending(conn, terms(f"w{worker}-{count}"), at=T0)
                post_payment_captured(conn, f"w{worker}-{count}", at=T0)
            count += 1
        posted.append(count)

    threads = [threading.Thread(target=poster, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(500):  # let the load build up
        with engine.connect() as conn:
            if conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one() > 40:
                break
        threading.Event().wait(0.01)
    with engine.begin() as conn:  # close and settle while the posters run
        settled = settle_day(conn, T0.date(), now=T0 + timedelta(days=1), cutoff=Cutoff())
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    with engine.begin() as conn:
        report = check_ledger(conn)  # each batch's net still equals its day's ledger movement
        assert report.ok, report.problems
        late_captures = conn.execute(
            sa.select(sa.func.count())
            .select_from(entries)
            .where(entries.c.business_date > T0.date(), entries.c.event_type == "CAPTURE")
        ).scalar_one()
    settled_captures = sum(batch.total.count for batch in settled if batch.role == "ACQUIRER")
    assert settled_captures > 0 and sum(posted) == settled_captures + late_captures


def _waits_on_entries(engine: sa.Engine) -> bool:
    """Whether some transaction is queued for a lock on this schema's ledger_entries."""
    query = sa.text(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'ledger_entries'::regclass"
    )
    for _ in range(1000):  # bounded: at most ~10 s
        with engine.connect() as conn:
            if conn.execute(query).scalar_one() > 0:
                return True
        threading.Event().wait(0.01)
    return False


@pytest.mark.postgres
def test_a_posting_queued_behind_a_close_lands_in_the_next_day(pg_schema_engine: sa.Engine) -> None:
    """The day is computed in the posting's INSERT; one that waited for a close must see it."""
    from datetime import timedelta

    from blindgate.ledger import Cutoff, close_business_day
    from blindgate.storage.migrate import upgrade

    engine = pg_schema_engine
    upgrade(engine)
    posted: list[object] = []
    with engine.connect() as poster_conn:
        for index in range(8):  # past psycopg's prepare threshold: the INSERT runs server-side prepared
            with poster_conn.begin():
                post_payment_pending(poster_conn, terms(f"early{index}"), at=T0)

        def post() -> None:
            with poster_conn.begin():
                posted.append(post_payment_pending(poster_conn, terms("late"), at=T0))

        with engine.connect() as closer:
            with closer.begin():
                assert close_business_day(closer, Cutoff(), T0.date(), now=T0 + timedelta(days=1))
                poster = threading.Thread(target=post)
                poster.start()
                assert _waits_on_entries(engine)  # held back while the close is uncommitted
            poster.join(timeout=30)
    assert [p.business_date for p in posted] == [T0.date() + timedelta(days=1)]  # type: ignore[attr-defined]


@pytest.mark.postgres
def test_a_close_waits_for_the_postings_in_flight(pg_schema_engine: sa.Engine) -> None:
    from datetime import timedelta

    from blindgate.ledger import Cutoff, close_business_day
    from blindgate.storage.migrate import upgrade

    engine = pg_schema_engine
    upgrade(engine)
    closed: list[bool] = []

    def close() -> None:
        with engine.begin() as conn:
            closed.append(close_business_day(conn, Cutoff(), T0.date(), now=T0 + timedelta(days=1)))

    with engine.connect() as poster:
        with poster.begin():
            pending = post_payment_pending(poster, terms("p1"), at=T0)
            closer = threading.Thread(target=close)
            closer.start()
            assert _waits_on_entries(engine) and not closed  # the close waits for this transaction
            captured = post_payment_captured(poster, "p1", at=T0)
        closer.join(timeout=30)
    assert closed == [True]
    assert pending.business_date == captured.business_date == T0.date()
    with engine.begin() as conn:
        assert check_ledger(conn).ok
