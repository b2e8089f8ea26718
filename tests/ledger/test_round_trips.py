"""The statements a payment's postings send to the store (its cost on the pay path).

The business day is computed inside each entry's INSERT (no calendar look-up, no lock of its
own), and on PostgreSQL a caller's riders travel in the ledger's statements
(`ledger.prepared.Rider`): these tests fail if a posting grows another round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from blindgate.ledger import (
    PaymentAlreadyResolved,
    post_payment_captured,
    post_payment_pending,
    void_payment,
)
from tests.ledger.helpers import T0, add, bump, terms


@contextmanager
def statements(engine: sa.Engine) -> Iterator[list[str]]:
    """The first word of every statement sent while the block runs (LOCK, SELECT, INSERT...)."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        sent.append(statement.split(None, 1)[0].upper())

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)


def test_pending_then_capture_in_two_transactions(engine: sa.Engine) -> None:
    # SQLite: the entry (its day computed in it), then all its lines; PostgreSQL: both in one
    # statement (the entry's INSERT a CTE).
    entry = ["WITH"] if engine.dialect.name == "postgresql" else ["INSERT", "INSERT"]
    with statements(engine) as sent, engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
    assert sent == entry
    with statements(engine) as sent, engine.begin() as conn:
        post_payment_captured(conn, "p1", at=T0 + timedelta(seconds=1))
    assert sent == ["SELECT", *entry]  # the pending entry (locked), then as above


def test_a_repeated_resolution_reads_the_first_one(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
        first = post_payment_captured(conn, "p1", at=T0)
        again = post_payment_captured(conn, "p1", at=T0 + timedelta(minutes=1))
        with pytest.raises(PaymentAlreadyResolved):
            void_payment(conn, "p1", at=T0)
    assert again.replayed and again.entry_id == first.entry_id


def test_riders_cost_no_statement_of_their_own_on_postgresql(engine: sa.Engine) -> None:
    # The gateway's pay path: the payment's row with its hold; the settle as the capture's gate,
    # the notification with its entry. SQLite runs each rider just before what carries it.
    postgresql = engine.dialect.name == "postgresql"
    with statements(engine) as sent, engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0, rider=add("A"))
    assert sent == (["WITH"] if postgresql else ["INSERT", "INSERT", "INSERT"])
    with statements(engine) as sent, engine.begin() as conn:
        post_payment_captured(conn, "p1", at=T0, gate=bump("A"), rider=add("B"))
    assert sent == (["WITH", "WITH"] if postgresql else ["UPDATE", "SELECT", "INSERT", "INSERT", "INSERT"])
