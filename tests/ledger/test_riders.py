"""Riders and gates: a caller's writes carried in the ledger's statements (`ledger.prepared.Rider`).

A rider is written with the entry whether or not the entry is new; a gate that changes no row
posts nothing (`GateRefused`); a failing rider leaves nothing; a gate takes its row's lock
before the ledger takes the pending entry's (the order every other path keeps). The statements
they cost are pinned in test_round_trips.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from blindgate.ledger import (
    GateRefused,
    UnknownPayment,
    check_ledger,
    post_payment_captured,
    post_payment_pending,
    void_payment,
)
from blindgate.ledger.prepared import Prepared, Rider
from blindgate.storage.migrate import upgrade
from blindgate.storage.schema import entries, risk_payers
from tests.ledger.helpers import T0, add, bump, row_count, terms


def checks(conn: sa.Connection, pseudonym: str) -> int | None:
    return conn.execute(sa.select(risk_payers.c.checks).where(risk_payers.c.pseudonym == pseudonym)).scalar()


def resolutions(conn: sa.Connection) -> int:
    return int(
        conn.execute(sa.select(sa.func.count()).where(entries.c.event_key == "resolve:p1")).scalar_one()
    )


def test_a_rider_is_written_with_the_entry(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0, rider=add("A"))
        post_payment_captured(conn, "p1", at=T0, gate=bump("A"), rider=add("B"))
        assert (checks(conn, "A"), checks(conn, "B")) == (1, 0)
        assert resolutions(conn) == 1 and check_ledger(conn).ok


def test_a_gate_that_changes_nothing_posts_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0, rider=add("A"))
        conn.execute(risk_payers.update().values(checks=5))  # another writer got there first
        with pytest.raises(GateRefused):
            post_payment_captured(conn, "p1", at=T0, gate=bump("A"), rider=add("B"))
        with pytest.raises(GateRefused):
            void_payment(conn, "p1", at=T0, gate=bump("A"))
        assert resolutions(conn) == 0 and checks(conn, "B") is None and checks(conn, "A") == 5


def test_an_unknown_payment_is_refused_as_such_behind_a_gate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(risk_payers.insert().values(wallet_id="W", pseudonym="A", checks=0))
        with pytest.raises(UnknownPayment):
            post_payment_captured(conn, "p1", at=T0, gate=bump("A"))


def test_a_failing_rider_leaves_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(risk_payers.insert().values(wallet_id="W", pseudonym="A", checks=0))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0, rider=add("A"))  # the payer's row exists
    with engine.begin() as conn:
        assert (
            row_count(conn) == 0
            and conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar() == 0
        )


@pytest.mark.postgres
def test_a_rider_must_bring_its_own_names(pg_schema_engine: sa.Engine) -> None:
    upgrade(pg_schema_engine)
    taken = Rider(Prepared(risk_payers.insert()), {"wallet_id": "W", "pseudonym": "A", "checks": 0})
    with pytest.raises(ValueError, match="wallet_id"), pg_schema_engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0, rider=taken)  # the entry binds wallet_id too


@contextmanager
def holding_the_payers_row(engine: sa.Engine) -> Iterator[sa.Connection]:
    """Another transaction that holds the payer's row lock until the block ends."""
    with engine.begin() as conn:
        conn.execute(risk_payers.update().where(risk_payers.c.pseudonym == "A").values(checks=0))
        yield conn


@pytest.mark.postgres
def test_a_gate_locks_its_row_before_the_ledger_locks_the_entry(pg_schema_engine: sa.Engine) -> None:
    engine = pg_schema_engine
    upgrade(engine)
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0, rider=add("A"))
    outcome: list[object] = []

    def capture() -> None:
        with engine.begin() as conn:
            outcome.append(post_payment_captured(conn, "p1", at=T0, gate=bump("A")))

    with holding_the_payers_row(engine) as other:
        worker = threading.Thread(target=capture)
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive()  # the capture waits at its gate...
        # ...holding no lock of the ledger's: were the entry locked first, as two paths taking
        # the two locks in opposite orders would, this would fail at once (and could deadlock).
        other.execute(
            sa.select(entries.c.id).where(entries.c.event_key == "payment:p1").with_for_update(nowait=True)
        )
    worker.join(timeout=10)
    assert not worker.is_alive() and len(outcome) == 1
    with engine.begin() as conn:
        assert resolutions(conn) == 1 and checks(conn, "A") == 1
