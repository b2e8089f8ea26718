"""The velocity check is atomic with the capture: two workers' captures of one payer cannot
both pass the limit (SQLite file and a throw-away PostgreSQL schema)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.api.network import RiskLimits
from blindgate.gateway import risk
from blindgate.gateway.pay import PROCESSING, SUCCESS
from blindgate.storage.migrate import open_store
from blindgate.storage.schema import payments

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
LIMITS = RiskLimits(window_s=600, max_payments=1)
# How long the first worker holds its transaction open for the second to run into it. If the
# second finishes first, the check was not atomic; if it blocks, this wait only costs time.
HOLD_S = 0.5


def _payment(payment_id: str, pseudonym: str, status: str) -> dict[str, object]:
    return {
        "payment_id": payment_id, "acquirer_id": "ACQ", "payment_request_id": payment_id,
        "fingerprint": "f", "wallet_id": "W", "currency": "KRW", "amount": 100,
        "wallet_currency": "KRW", "wallet_amount": 100, "quote_id": "Q", "fx_rate": "1",
        "quote_expires_at": NOW, "status": status, "result_code": "X", "pseudonym": pseudonym,
        "refunded": 0, "created_at": NOW, "updated_at": NOW,
    }  # fmt: skip


def _capture(engine: sa.Engine, pseudonym: str, payment_id: str, between: Callable[[], None]) -> bool:
    """The pay path's capture transaction: check velocity, then (if allowed) capture."""
    with engine.begin() as conn:
        over = risk.over_velocity(conn, LIMITS, "W", pseudonym, 100, NOW)
        between()
        if not over:
            conn.execute(payments.update().where(payments.c.payment_id == payment_id).values(status=SUCCESS))
    return not over


def _race(engine: sa.Engine, same_payer: bool = True, hold_s: float = HOLD_S) -> dict[str, bool]:
    """Worker A checks and holds its transaction while worker B checks and captures; then A captures.

    Answers whether each passed, and whether B was done while A still held its transaction.
    """
    payer_a = f"ps_{uuid.uuid4().hex}"
    payer_b = payer_a if same_payer else f"ps_{uuid.uuid4().hex}"
    with engine.begin() as conn:
        conn.execute(payments.insert(), [_payment(f"{payer_a}-a", payer_a, PROCESSING),
                                         _payment(f"{payer_b}-b", payer_b, PROCESSING)])  # fmt: skip
    a_checked, b_done = threading.Event(), threading.Event()
    outcome: dict[str, bool] = {}

    def worker_b() -> None:
        assert a_checked.wait(30)
        outcome["b"] = _capture(engine, payer_b, f"{payer_b}-b", lambda: None)
        b_done.set()

    def a_between() -> None:
        a_checked.set()
        outcome["b_done_first"] = b_done.wait(hold_s)

    thread = threading.Thread(target=worker_b)
    thread.start()
    outcome["a"] = _capture(engine, payer_a, f"{payer_a}-a", a_between)
    thread.join(60)
    assert not thread.is_alive()
    with engine.connect() as conn:
        captured = conn.execute(
            sa.select(sa.func.count()).where(
                payments.c.pseudonym.in_((payer_a, payer_b)), payments.c.status == SUCCESS
            )
        ).scalar_one()
    assert captured == outcome["a"] + outcome["b"]
    return outcome


def test_racing_captures_of_one_payer_on_sqlite(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        outcome = _race(engine)
        assert (outcome["a"], outcome["b"]) == (True, False)  # A checked first; B sees A's capture
        assert not outcome["b_done_first"]  # B waited for A's transaction
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_racing_captures_of_one_payer_on_postgres(pg_schema_url: str) -> None:
    engine = open_store(pg_schema_url)
    try:
        outcome = _race(engine)
        assert (outcome["a"], outcome["b"]) == (True, False)
        assert not outcome["b_done_first"]
        # Another payer is neither limited nor held back by A's open transaction: B completes
        # while A waits for it (the wait ends as soon as B is done).
        outcome = _race(engine, same_payer=False, hold_s=30)
        assert outcome == {"a": True, "b": True, "b_done_first": True}
    finally:
        engine.dispose()
