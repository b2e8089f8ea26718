"""Refund and refund inquiry: the acquirer gives part or all of a successful payment back.

A refund is accepted (stored, its amount reserved against what remains refundable, its share
of the wallet's currency fixed) in one transaction, then asked of the wallet; its outcome posts
the refund to the ledger, or gives the reservation back. Racing refunds cannot overdraw a
payment: the reservation is a guarded UPDATE. A refund is refused while a cancel of the payment
is on its way (`blindgate.gateway.cancels` says why).

Idempotency: ``(acquirer, refundRequestId)`` is unique in the store; a repeated request with
other fields is REPEAT_REQ_INCONSISTENT. A refund left U (no answer in time) is settled by a
replay or an ``inquiryRefund``, which ask the wallet again (its refund is idempotent on the
gateway's refund id) for exactly the same amount.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from blindgate.api.amounts import Money
from blindgate.api.calls import NoAnswer
from blindgate.api.models import WALLET_REFUND_PATH, PaymentRef, RefundRef, RefundRequest
from blindgate.api.network import Partner
from blindgate.api.results import ApiError, result
from blindgate.gateway import bookkeeping
from blindgate.gateway.context import PaymentContext, about, aware, iso, known_code
from blindgate.gateway.pay import fingerprint
from blindgate.gateway.repository import PaymentRow, PaymentStatus, RefundRow, RefundStatus
from blindgate.ledger.money import proportional_share


class Refunds:
    def __init__(self, context: PaymentContext) -> None:
        self.context, self.store, self.db = context, context.store, context.db

    async def refund(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        request = RefundRequest.parse(body)
        payment = await self.context.find(acquirer, PaymentRef(None, request.payment_id))
        if request.amount.currency != payment.currency:
            raise ApiError("CURRENCY_NOT_SUPPORT", "a refund is in the payment's currency")
        row = RefundRow(
            refund_id=f"BR{secrets.token_hex(15)}",
            acquirer_id=acquirer.party_id,
            refund_request_id=request.refund_request_id,
            payment_id=payment.payment_id,
            fingerprint=fingerprint(body),
            currency=request.amount.currency,
            amount=request.amount.value,
            status=RefundStatus.PROCESSING,
            result_code="PAYMENT_IN_PROCESS",
            created_at=self.context.clock(),
        )
        try:
            await self.db.transaction(lambda conn: self._accept(conn, payment, row))
        except sa.exc.IntegrityError:
            existing = await self.db.run(
                self.store.refund_by_request, acquirer.party_id, request.refund_request_id
            )
            if existing is None:
                raise ApiError("UNKNOWN_EXCEPTION") from None
            if existing.fingerprint != row.fingerprint:
                raise ApiError("REPEAT_REQ_INCONSISTENT") from None
            row = existing
        if row.status == RefundStatus.PROCESSING:
            row = await self._ask_wallet(payment, row)
        return _answer(row)

    def _accept(self, conn: sa.Connection, payment: PaymentRow, row: RefundRow) -> None:
        """Store the refund, reserve its amount and fix its wallet share (one transaction: ``conn``).

        The row first: a repeated request meets its unique key (IntegrityError: the caller
        answers with the first one's outcome) before any rule about the payment is judged."""
        self.store.insert_refund(conn, row)
        self.store.insert_wallet_share(conn, row.refund_id, self._reserve(conn, payment, row.amount))

    def _reserve(self, conn: sa.Connection, payment: PaymentRow, amount: int) -> int:
        """Take ``amount`` from what remains refundable, atomically: racing refunds cannot overdraw.

        Answers the refund's share of the wallet's amount: the cumulative share of the range it
        reserved, read under the reservation's lock, so racing refunds get adjacent ranges and
        refunds that all succeed give back exactly what was taken.
        """
        if payment.status != PaymentStatus.SUCCESS:
            raise ApiError("ORDER_STATUS_INVALID", "only a successful payment can be refunded")
        if (
            self.context.clock()
            >= aware(payment.created_at) + self.context.network.gateway.retention.refund_window
        ):
            # The payment's lifecycle has ended: what a refund's notification needs may be purged.
            raise ApiError("REFUND_WINDOW_EXCEED")
        reserved = self.store.reserve_refund(conn, payment.payment_id, amount)
        if reserved is None:
            raise ApiError("REFUND_AMOUNT_EXCEED")
        if self.store.cancel_held(conn, payment.payment_id):  # read under the row's lock just taken
            raise ApiError("ORDER_STATUS_INVALID", "a cancel of this payment is in process")
        return proportional_share(payment.wallet_amount, reserved - amount, reserved, payment.amount)

    async def _ask_wallet(self, payment: PaymentRow, row: RefundRow) -> RefundRow:
        """Ask (or ask again: the wallet's refund is idempotent) and settle the outcome once."""
        toward_wallet = {
            **about(payment),
            "refundRequestId": row.refund_id,
            "refundAmount": Money(payment.wallet_currency, await self._wallet_share(payment, row)).to_wire(),
        }
        try:
            answer = await self.context.ask(payment.wallet_id, WALLET_REFUND_PATH, toward_wallet)
        except NoAnswer:
            return row
        outcome = answer["result"]
        if outcome.get("resultStatus") not in ("S", "F"):
            return row
        status = RefundStatus.SUCCESS if outcome["resultStatus"] == "S" else RefundStatus.FAIL
        code = known_code(outcome.get("resultCode"))
        now = self.context.clock()
        await self.db.transaction(lambda conn: self._settle(conn, payment, row, status, code, now))
        fresh = await self.db.run(self.store.refund, row.refund_id)
        assert fresh is not None  # refunds are never deleted
        return fresh

    def _settle(
        self,
        conn: sa.Connection,
        payment: PaymentRow,
        row: RefundRow,
        status: RefundStatus,
        code: str,
        now: datetime,
    ) -> None:
        """The wallet's outcome, once: posted to the ledger, or the reservation given back."""
        if not self.store.settle_refund(conn, row.refund_id, status, code):
            return  # settled meanwhile by a replay or an inquiry
        if status == RefundStatus.SUCCESS:
            network = self.context.network
            bookkeeping.on_refunded(conn, payment.payment_id, row.refund_id, row.amount, now, network)
        else:
            self.store.give_back_reservation(conn, payment.payment_id, row.amount)

    async def _wallet_share(self, payment: PaymentRow, row: RefundRow) -> int:
        """The refund's share fixed at acceptance (a refund stored before shares were: computed)."""
        share = await self.db.run(self.store.wallet_share, row.refund_id)
        if share is not None:
            return share
        before = await self.db.run(self.store.refunded_before, payment.payment_id, row.refund_id)
        return proportional_share(payment.wallet_amount, before, before + row.amount, payment.amount)

    async def inquiry(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        ref = RefundRef.parse(body)
        row = await self.db.run(self.store.refund_by_request, acquirer.party_id, ref.refund_request_id)
        if row is None:
            raise ApiError("ORDER_NOT_EXIST", "no refund with this refundRequestId")
        if row.status == RefundStatus.PROCESSING:  # left U (no answer in time): ask the wallet again
            payment = await self.db.run(self.store.payment, row.payment_id)
            assert payment is not None
            row = await self._ask_wallet(payment, row)
        answer = _answer(row)
        return {
            **answer,
            "result": result("SUCCESS"),
            "refundStatus": row.status.value,
            "refundResult": answer["result"],
        }


def _answer(row: RefundRow) -> dict[str, Any]:
    answer = {
        "result": result(row.result_code),
        "refundRequestId": row.refund_request_id,
        "refundId": row.refund_id,
        "paymentId": row.payment_id,
        "refundAmount": Money(row.currency, row.amount).to_wire(),
    }
    if row.status == RefundStatus.SUCCESS:
        answer["refundTime"] = iso(row.created_at)
    return answer
