"""Postings: the money flow, pending -> posted/voided, reversals, idempotency, refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from blindgate.ledger import (
    CancelWindowClosed,
    ConflictingEvent,
    FeeSchedule,
    InvalidAmount,
    PaymentAlreadyResolved,
    PaymentNotCaptured,
    RefundExceedsRemaining,
    UnknownPayment,
    check_ledger,
    post_cancel,
    post_payment_captured,
    post_payment_pending,
    post_refund,
    void_payment,
)
from tests.ledger.helpers import T0, balances, row_count, terms


def test_capture_moves_the_hold_to_posted_with_fx_and_fees(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        first = post_payment_pending(conn, terms(), at=T0)
        assert balances(conn, "pending")[("ACQ_1", "acquirer_payable", "USD")] == -(10_000 - 250)
        assert balances(conn) == {}
        post_payment_captured(conn, "p1", at=T0 + timedelta(seconds=2))
        assert balances(conn, "pending") == {}
        # 100.00 USD at 7.1234 = 712.34 CNY; MDR 2.5% = 2.50 USD; wallet share 0.8% of 712.34 = 5.70 CNY
        assert balances(conn) == {
            ("WAL_1", "wallet_receivable", "CNY"): 71_234 - 570,
            ("gateway", "fee_income", "CNY"): 570,
            ("gateway", "fx_position", "CNY"): -71_234,
            ("gateway", "fx_position", "USD"): 10_000,
            ("ACQ_1", "acquirer_payable", "USD"): -9_750,
            ("gateway", "fee_income", "USD"): -250,
        }
        assert first.event_type == "PENDING" and not first.replayed
        assert check_ledger(conn).ok


def test_same_currency_payment_has_no_fx_position(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(wallet_currency="USD", fx_rate=1), at=T0)
        post_payment_captured(conn, "p1", at=T0)
        assert not any(kind == "fx_position" for _, kind, _ in balances(conn))
        with pytest.raises(InvalidAmount):
            post_payment_pending(conn, terms("p2", wallet_currency="USD", fx_rate=2), at=T0)


def test_void_releases_the_hold_and_nothing_is_posted(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
        void_payment(conn, "p1", at=T0)
        assert balances(conn, "pending") == {} and balances(conn) == {}
        with pytest.raises(PaymentAlreadyResolved):
            post_payment_captured(conn, "p1", at=T0)
        with pytest.raises(PaymentNotCaptured):
            post_refund(conn, "p1", "r1", 100, at=T0)
        assert check_ledger(conn).ok


def test_every_event_is_idempotent(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
        post_payment_captured(conn, "p1", at=T0)
        post_refund(conn, "p1", "r1", 3_000, at=T0)
        before = row_count(conn)
        assert post_payment_pending(conn, terms(), at=T0 + timedelta(seconds=5)).replayed
        assert post_payment_captured(conn, "p1", at=T0).replayed
        assert post_refund(conn, "p1", "r1", 3_000, at=T0).replayed
        assert row_count(conn) == before
        with pytest.raises(ConflictingEvent):
            post_payment_pending(conn, terms(amount=10_001), at=T0)
        with pytest.raises(ConflictingEvent):
            post_payment_pending(conn, terms(fees=FeeSchedule()), at=T0)
        with pytest.raises(ConflictingEvent):
            post_payment_pending(conn, terms(quote_id="q2"), at=T0)
        with pytest.raises(ConflictingEvent):
            post_refund(conn, "p1", "r1", 3_001, at=T0)
        assert row_count(conn) == before


def test_partial_refunds_then_full_give_back_exactly_what_was_taken(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(amount=1_001), at=T0)
        post_payment_captured(conn, "p1", at=T0)
        for index, part in enumerate((333, 333, 335)):
            post_refund(conn, "p1", f"r{index}", part, at=T0)
        assert balances(conn) == {}
        assert check_ledger(conn).ok


def test_refund_above_what_remains_is_refused_and_writes_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
        post_payment_captured(conn, "p1", at=T0)
        post_refund(conn, "p1", "r1", 6_000, at=T0)
        before = row_count(conn)
        with pytest.raises(RefundExceedsRemaining, match="exceeds the 4000 that remains"):
            post_refund(conn, "p1", "r2", 4_001, at=T0)
        with pytest.raises(InvalidAmount):
            post_refund(conn, "p1", "r3", 0, at=T0)
        with pytest.raises(UnknownPayment):
            post_refund(conn, "nope", "r4", 1, at=T0)
        assert row_count(conn) == before


def test_cancel_voids_a_pending_payment(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
        assert post_cancel(conn, "p1", at=T0).event_type == "VOID"
        assert post_cancel(conn, "p1", at=T0).replayed
        assert balances(conn, "pending") == {}


def test_cancel_reverses_what_remains_within_the_window_only(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
        post_payment_captured(conn, "p1", at=T0)
        post_refund(conn, "p1", "r1", 2_500, at=T0)
        cancel = post_cancel(conn, "p1", at=T0 + timedelta(hours=1))
        assert cancel.event_type == "CANCEL"
        assert post_cancel(conn, "p1", at=T0 + timedelta(hours=2)).replayed
        assert balances(conn) == {}
        post_payment_pending(conn, terms("p2"), at=T0)
        post_payment_captured(conn, "p2", at=T0)
        before = row_count(conn)
        with pytest.raises(CancelWindowClosed, match="cancel window"):
            post_cancel(conn, "p2", at=T0 + timedelta(hours=25))
        assert row_count(conn) == before


def test_naive_times_are_refused(engine: sa.Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="time-zone aware"):
        post_payment_pending(conn, terms(), at=T0.replace(tzinfo=None))


def test_a_rolled_back_transaction_leaves_no_posting(engine: sa.Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as conn:
        post_payment_pending(conn, terms(), at=T0)
        raise RuntimeError("the gateway's state change failed")
    with engine.begin() as conn:
        assert row_count(conn) == 0
