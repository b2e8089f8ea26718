"""The whole-store check finds every kind of broken invariant."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from blindgate.ledger import check_ledger, post_payment_captured, post_payment_pending, post_refund
from blindgate.storage.schema import TRIGGERS, entries, lines
from tests.ledger.helpers import T0, terms


def _seed(conn: sa.Connection, *, allow_tampering: bool = True) -> None:
    post_payment_pending(conn, terms(), at=T0)
    post_payment_captured(conn, "p1", at=T0)
    post_refund(conn, "p1", "r1", 4_000, at=T0)
    if allow_tampering:  # as someone with rights to drop the store's triggers could
        for trigger in TRIGGERS[conn.dialect.name]:
            table = "ledger_lines" if "lines" in trigger else "ledger_entries"
            on_table = f" ON {table}" if conn.dialect.name == "postgresql" else ""
            conn.execute(sa.text(f"DROP TRIGGER {trigger}{on_table}"))


def test_postings_cannot_be_changed_in_the_store(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _seed(conn, allow_tampering=False)
    for statement in (
        sa.update(lines).values(amount=lines.c.amount + 1),
        sa.delete(lines),
        sa.update(entries).values(amount=1),
        sa.delete(entries).where(entries.c.event_key == "refund:r1"),
    ):
        with pytest.raises(sa.exc.DBAPIError, match="immutable"), engine.begin() as conn:
            conn.execute(statement)
    with engine.connect() as conn:
        assert check_ledger(conn).ok and check_ledger(conn).entries == 3


def test_a_healthy_store_passes(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _seed(conn)
        report = check_ledger(conn)
        assert report.ok, report.problems
        assert report.entries == 3 and report.currencies["USD"] > 0


def test_a_tampered_line_is_found(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _seed(conn)
        first = conn.execute(sa.select(sa.func.min(lines.c.id))).scalar_one()
        conn.execute(sa.update(lines).where(lines.c.id == first).values(amount=lines.c.amount + 1))
        problems = check_ledger(conn).problems
        assert any("sums to 1, not 0" in p for p in problems)
        assert any("entry payment:p1 is unbalanced" in p for p in problems)


def test_a_pending_hold_left_after_capture_is_found(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _seed(conn)
        capture = conn.execute(
            sa.select(entries.c.id).where(entries.c.event_key == "resolve:p1")
        ).scalar_one()
        conn.execute(sa.delete(lines).where(lines.c.entry_id == capture, lines.c.bucket == "pending"))
        assert any("is resolved but holds" in p for p in check_ledger(conn).problems)


def test_an_over_refund_is_found(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _seed(conn)
        conn.execute(sa.update(entries).where(entries.c.event_key == "refund:r1").values(amount=20_000))
        assert any("gave back 20000, more than its 10000" in p for p in check_ledger(conn).problems)
