"""Concurrent duplicates from separate connections (as from separate workers) post once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from blindgate.gateway.ledger import (
    LedgerError,
    check_ledger,
    post_payment_captured,
    post_payment_pending,
    post_refund,
)
from blindgate.gateway.ledger.schema import entries
from tests.ledger.helpers import T0, terms


@pytest.mark.postgres
def test_racing_duplicates_and_refunds_post_exactly_once(pg_schema_engine: sa.Engine) -> None:
    from blindgate.gateway.ledger import create_tables

    engine = pg_schema_engine
    create_tables(engine)
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
