"""Property: random interleavings of pays, captures, wallet timeouts, partial refunds, cancels,
duplicate retries and crashes between steps keep every currency balanced, each payment's
ledger figures match a plain model of what should have happened, and every settlement
batch's net equals the sum of its transactions."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blindgate.ledger import (
    Cutoff,
    LedgerError,
    check_ledger,
    post_cancel,
    post_payment_captured,
    post_payment_pending,
    post_refund,
    void_payment,
)
from blindgate.settlement import settle_day
from blindgate.settlement.batches import day_items
from blindgate.storage.schema import entries
from tests.ledger.helpers import T0, row_count, terms

_runs = itertools.count()


class Crash(Exception):
    """The process died after posting, before its transaction committed."""


@dataclass
class Model:
    amount: int
    state: str = "pending"  # pending, captured, voided
    given_back: int = 0
    cancelled: bool = False
    refunds: set[str] = field(default_factory=set)


CURRENCY_PAIRS = [("USD", "CNY", Decimal("7.1234")), ("JPY", "KWD", Decimal("0.00205")), ("EUR", "EUR", 1)]

operations = st.lists(
    st.tuples(
        st.sampled_from(["pay", "capture", "timeout", "refund", "cancel"]),
        st.integers(0, 5),  # which payment
        st.integers(1, 20_000),  # an amount
        st.sampled_from(["once", "duplicate", "crash"]),
    ),
    max_size=25,
)


def _apply(conn: sa.Connection, op: str, pid: str, amount: int, seq: int, run: int) -> None:
    at = T0 + timedelta(days=run, minutes=seq)  # each example has its own business day
    if op == "pay":
        source, target, rate = CURRENCY_PAIRS[amount % 3]
        post_payment_pending(
            conn, terms(pid, amount, currency=source, wallet_currency=target, fx_rate=rate), at=at
        )
    elif op == "capture":
        post_payment_captured(conn, pid, at=at)
    elif op == "timeout":
        void_payment(conn, pid, at=at)
    elif op == "refund":
        post_refund(conn, pid, f"{pid}-r{amount}", amount, at=at)
    else:
        post_cancel(conn, pid, at=at)


def _expect(model: dict[str, Model], op: str, pid: str, amount: int) -> bool:
    """Whether the ledger must accept the operation; the model follows what it should do."""
    payment = model.get(pid)
    if op == "pay":
        if payment is None:
            model[pid] = Model(amount)
        return payment is None or payment.amount == amount  # a replay must match
    if payment is None:
        return False
    if op in ("capture", "timeout"):
        target = "captured" if op == "capture" else "voided"
        if payment.state == "pending":
            payment.state = target
        return payment.state == target
    if op == "cancel":
        if payment.state != "captured":
            payment.state = "voided"
            return True
        if payment.cancelled:
            return True
        if payment.given_back == payment.amount:
            return False
        payment.given_back, payment.cancelled = payment.amount, True
        return True
    key = f"{pid}-r{amount}"
    if key in payment.refunds:
        return True
    if payment.state != "captured" or payment.given_back + amount > payment.amount:
        return False
    payment.refunds.add(key)
    payment.given_back += amount
    return True


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_random_interleavings_keep_the_ledger_exact(
    engine: sa.Engine, ops: list[tuple[str, int, int, str]]
) -> None:
    run = next(_runs)
    model: dict[str, Model] = {}
    for seq, (op, which, amount, mode) in enumerate(ops):
        pid = f"run{run}-p{which}"
        if op == "refund":
            amount = amount % 4_000 + 1
        if mode == "crash":
            with engine.connect() as conn:
                before = row_count(conn)
            try:
                with engine.begin() as conn:
                    _apply(conn, op, pid, amount, seq, run)
                    raise Crash
            except (Crash, LedgerError):
                pass
            with engine.connect() as conn:
                assert row_count(conn) == before, "a crashed transaction left postings"
            continue
        for attempt in range(2 if mode == "duplicate" else 1):
            with engine.connect() as conn:
                before = row_count(conn)
            expected = _expect(model, op, pid, amount)
            try:
                with engine.begin() as conn:
                    _apply(conn, op, pid, amount, seq, run)
                accepted = True
            except LedgerError:
                accepted = False
            assert accepted == expected, (op, pid, amount, attempt)
            if attempt == 1 or not accepted:
                with engine.connect() as conn:
                    assert row_count(conn) == before, "a replay or a refusal wrote postings"
    with engine.connect() as conn:
        report = check_ledger(conn)
        assert report.ok, report.problems
        for pid, payment in model.items():
            resolution = conn.execute(
                sa.select(entries.c.event_type).where(entries.c.event_key == f"resolve:{pid}")
            ).scalar_one_or_none()
            expected_resolution = {"pending": None, "captured": "CAPTURE", "voided": "VOID"}[payment.state]
            assert resolution == expected_resolution
            given_back = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(entries.c.amount), 0)).where(
                    entries.c.payment_id == pid, entries.c.event_type.in_(("REFUND", "CANCEL"))
                )
            ).scalar_one()
            assert given_back == payment.given_back <= payment.amount
    _settle_and_compare(engine, (T0 + timedelta(days=run)).date())


def _settle_and_compare(engine: sa.Engine, day: date) -> None:
    """Every batch's net equals the sum of its transactions (and, asserted inside, its ledger movement)."""
    with engine.begin() as conn:
        found = settle_day(
            conn, day, now=datetime.combine(day + timedelta(days=1), time(), UTC), cutoff=Cutoff()
        )
    sums: dict[tuple[str, str, str], int] = defaultdict(int)
    with engine.connect() as conn:
        items = list(day_items(conn, day))
        assert check_ledger(conn).ok
    for item in items:
        sign = 1 if item["event_type"] == "CAPTURE" else -1
        sums[("ACQUIRER", item["acquirer_id"], item["currency"])] += sign * (
            item["amount"] - item["acquirer_fee"]
        )
        sums[("WALLET", item["wallet_id"], item["wallet_currency"])] += sign * (
            item["wallet_amount"] - item["wallet_fee"]
        )
    assert {(b.role, b.partner_id, b.currency): b.net_amount for b in found} == dict(sums)
