"""Merchant-presented order codes: the acquirer asks for a code, a wallet's customer scans it.

The flow (Alipay+ "Order Code", blind):

1. The acquirer's SDK calls ``payments/pay`` with ``inStorePaymentScenario=OrderCode`` and no
   payer. The gateway issues a random, unguessable code (`CODE_PREFIX` + 192 random bits,
   URL-safe), stores the order (amount, currency, merchant and store, expiry) and answers
   PAYMENT_IN_PROCESS (U) with an ``orderCodeForm`` to render as a QR code.
2. The payer scans it in the wallet's app. The wallet's agent calls userInitiatedPay with the
   code and the payer's pseudonym (never the customer id). The gateway checks the code is open
   and unexpired, quotes FX into the wallet's currency, checks the wallet's per-payer limits on
   the pseudonym, and in one transaction claims the code for this payer and inserts the payment
   (PROCESSING) with its pending posting — the same row and posting as a user-presented code.
   It answers with the order the wallet shows its customer and debits.
3. The wallet's agent reports the wallet's pay answer (customerId sealed to the acquirer, the
   pseudonym). `Pay.settle_wallet_answer` records it exactly as for a user-presented code:
   velocity check, capture or void, and the notification to ``paymentNotifyUrl`` in the outbox.
   The acquirer learns the result by that notification or by inquiryPayment; an unreported
   outcome is settled by inquiry or cancel, as any payment left PROCESSING.

Idempotency: a replayed pay (same ``paymentRequestId`` and fields) returns the same code, or
once scanned the payment's answer; other fields are REPEAT_REQ_INCONSISTENT. A code is claimed
once, by a guarded UPDATE: a second scan by the same payer gets the same payment again (the
wallet's pay is idempotent, so nothing is debited twice), any other scan ORDER_IS_CLOSED. An
expired or cancelled code cannot be paid (ORDER_IS_CLOSED).

Expiry: the gateway sweeps open codes past their expiry every `SWEEP_S` seconds
(`OrderCodes.expire_due`, run beside the notifier), and any use of a code (scan, inquiry,
replay, cancel) closes it if it is due. Whichever closes it puts, in the same transaction, a
FAIL notification (ORDER_IS_CLOSED) to the order's ``paymentNotifyUrl`` into the outbox, so
the acquirer learns it without asking; a code the acquirer cancelled is not notified.

What the gateway learns: the merchant's order (ids, amount, merchant and store names — fields
the field policy names clear), the code, and at the scan the wallet, the payer's pseudonym and
the customerId sealed to the acquirer. An order-code request carries no sealed field (there is
no wallet to seal to yet): the acquirer's agent refuses payer fields instead of sending them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from blindgate.api.amounts import Money
from blindgate.api.models import (
    ORDER_CODE_SCENARIO,
    OrderCodeRequest,
    PaymentRef,
    ScanRequest,
    check_currencies,
    in_store_scenario,
    text,
)
from blindgate.api.network import MAX_ORDER_CODE_TTL_S, WALLET, Partner
from blindgate.api.results import ApiError, result
from blindgate.crypto.pseudonyms import is_pseudonym
from blindgate.crypto.sealing import is_sealed
from blindgate.gateway import bookkeeping, risk
from blindgate.gateway.cancels import Cancels
from blindgate.gateway.context import PaymentContext, about
from blindgate.gateway.errors import ClaimLost
from blindgate.gateway.fx import Quote, RateBook
from blindgate.gateway.pay import GATEWAY_FIELDS, Pay, fingerprint, new_payment_id
from blindgate.gateway.repository import PaymentRow, PaymentStatus
from blindgate.storage.schema import order_codes

log = logging.getLogger("blindgate.gateway")

SWEEP_S = 1.0  # how often the gateway closes order codes past their expiry
SWEEP_BATCH = 500  # at most this many a sweep (the next sweep takes the rest)
CODE_PREFIX = "BGOC1"  # names the network's order codes to the wallets' apps
_CODE_RANDOM_BYTES = 24  # 192 bits: unguessable
CODE_CHARS = len(CODE_PREFIX) + 32


# The order fields a wallet shows its customer: merchant data the field policy names clear.
_SUMMARY_FIELDS = ("referenceOrderId", "orderDescription")
_MERCHANT_FIELDS = ("referenceMerchantId", "merchantMCC", "merchantName")
_STORE_FIELDS = ("referenceStoreId", "storeName", "storeMCC")


class OrderCodeStatus(StrEnum):
    OPEN = "OPEN"
    SCANNED = "SCANNED"  # claimed by a payer; from then on its payment row decides
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


OPEN, SCANNED, EXPIRED, CANCELLED = (
    OrderCodeStatus.OPEN,
    OrderCodeStatus.SCANNED,
    OrderCodeStatus.EXPIRED,
    OrderCodeStatus.CANCELLED,
)


class OrderCodes:
    """The order-code operations, beside `Pay` (which they hand a claimed code's payment) and
    `Cancels` (which cancels it)."""

    def __init__(self, context: PaymentContext, paying: Pay, cancels: Cancels, rates: RateBook) -> None:
        self.network, self.store, self.clock = context.network, context.store, context.clock
        self.engine, self.db = context.store.engine, context.db
        self.paying, self.cancels, self.rates = paying, cancels, rates

    # --- the acquirer's side ---------------------------------------------------------------------

    async def pay(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        """``payments/pay``: an order code when the scenario says so, else a user-presented code.
        Either way its amounts are in one currency, the acquirer's (`check_currencies`)."""
        check_currencies(body, acquirer.currency)
        if in_store_scenario(body) != ORDER_CODE_SCENARIO:
            return await self.paying.pay(acquirer, body)
        return await self.db.run(self.create, acquirer, body)

    def create(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        request = OrderCodeRequest.parse(body)
        if any(name in body for name in GATEWAY_FIELDS):
            raise ApiError("PARAM_ILLEGAL", "the request sets a field only the gateway sets")
        if _holds_sealed(body):
            raise ApiError("PARAM_ILLEGAL", "an order-code payment carries no sealed field")
        digest = fingerprint(body)
        existing = self._code_by_request(acquirer.party_id, request.payment_request_id)
        if existing is not None:  # a replay: judged before the expiry, which may have passed since
            return self._replay(existing, digest)
        if self.store.payment_exists(acquirer.party_id, request.payment_request_id):
            raise ApiError("REPEAT_REQ_INCONSISTENT", "paymentRequestId names another payment")
        now = self.clock()
        row = {
            "payment_id": new_payment_id(),
            "acquirer_id": acquirer.party_id,
            "payment_request_id": request.payment_request_id,
            "fingerprint": digest,
            "code_value": CODE_PREFIX + secrets.token_urlsafe(_CODE_RANDOM_BYTES),
            "currency": request.amount.currency,
            "amount": request.amount.value,
            "notify_url": request.notify_url,
            "order_summary": json.dumps(_summary(request.order)),
            "status": OPEN,
            "wallet_id": None,
            "expires_at": self._expiry(request.expiry_time, now),
            "created_at": now,
            "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(order_codes.insert(), row)
        except sa.exc.IntegrityError:  # a concurrent duplicate won the insert
            existing = self._code_by_request(acquirer.party_id, request.payment_request_id)
            if existing is None:  # cannot happen: the unique key that refused us names a row
                raise ApiError("UNKNOWN_EXCEPTION") from None
            return self._replay(existing, digest)
        log.info("order code issued", extra={"payment_id": row["payment_id"]})
        return self._answer(row)

    def _replay(self, existing: dict[str, Any], digest: str) -> dict[str, Any]:
        """A repeated request: the first outcome if it is the same request, else refused."""
        if existing["fingerprint"] != digest:
            raise ApiError("REPEAT_REQ_INCONSISTENT")
        return self._answer(existing)

    def _expiry(self, asked: datetime | None, now: datetime) -> datetime:
        if asked is None:
            return now + timedelta(seconds=self.network.gateway.order_code_ttl_s)
        if not now < asked <= now + timedelta(seconds=MAX_ORDER_CODE_TTL_S):
            raise ApiError("PARAM_ILLEGAL", "paymentExpiryTime must be in the next 30 minutes")
        return asked.astimezone(UTC)

    def _answer(self, code: dict[str, Any]) -> dict[str, Any]:
        """The pay answer for an order code in its present state (a replay gets the same)."""
        code = self._expire_if_due(code)
        if code["status"] == SCANNED:
            payment = self.store.payment(code["payment_id"])
            assert payment is not None  # claimed and inserted in one transaction
            return self.paying.answer(payment)
        answer = {
            "result": result("PAYMENT_IN_PROCESS" if code["status"] == OPEN else "ORDER_IS_CLOSED"),
            "paymentRequestId": code["payment_request_id"],
            "paymentId": code["payment_id"],
            "paymentAmount": Money(code["currency"], code["amount"]).to_wire(),
            "paymentCreateTime": _iso(code["created_at"]),
        }
        if code["status"] == OPEN:
            answer["orderCodeForm"] = {
                "paymentMethodType": "CONNECT_WALLET",
                "expireTime": _iso(code["expires_at"]),
                "codeDetails": [
                    {"codeValueType": "QRCODE", "codeValue": code["code_value"], "displayType": "BIGIMAGE"}
                ],
            }
        return answer

    async def inquiry(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.paying.inquiry(acquirer, body)
        except ApiError as missing:
            found = await self.db.run(self._find, acquirer, body, missing)
        code = await self.db.run(self._expire_if_due, found)
        if code["status"] == SCANNED:  # scanned since: its payment answers
            return await self.paying.inquiry(acquirer, body)
        answer = await self.db.run(self._answer, code)
        answer.pop("orderCodeForm", None)
        status = {OPEN: "PROCESSING", EXPIRED: "FAIL", CANCELLED: "CANCELLED"}[code["status"]]
        return {
            **{k: v for k, v in answer.items() if k != "result"},
            "result": result("SUCCESS"),
            "paymentResult": answer["result"],
            "paymentStatus": status,
        }

    async def cancel(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.cancels.cancel(acquirer, body)
        except ApiError as missing:
            code = await self.db.run(self._find, acquirer, body, missing)
        now = self.clock()
        if await self.db.run(self._cancel_open, code, now) == SCANNED:  # a scan won the race:
            return await self.cancels.cancel(acquirer, body)  # cancel its payment
        return {
            "result": result("SUCCESS"),
            "paymentRequestId": code["payment_request_id"],
            "paymentId": code["payment_id"],
            "cancelTime": _iso(now),
        }

    def _cancel_open(self, code: dict[str, Any], now: datetime) -> str:
        """CANCELLED if the code is still open; the status it has afterwards."""
        with self.engine.begin() as conn:
            conn.execute(
                order_codes.update()
                .where(order_codes.c.payment_id == code["payment_id"], order_codes.c.status == OPEN)
                .values(status=CANCELLED, updated_at=now)
            )
        return str(self._code(code["payment_id"])["status"])

    def _find(self, acquirer: Partner, body: dict[str, Any], missing: ApiError) -> dict[str, Any]:
        """The acquirer's order code named by ``body``; re-raises ``missing`` when there is none."""
        if missing.code != "ORDER_NOT_EXIST":
            raise missing
        ref = PaymentRef.parse(body)
        if ref.payment_request_id is not None:
            code = self._code_by_request(acquirer.party_id, ref.payment_request_id)
        else:
            assert ref.payment_id is not None
            code = self._one(order_codes.c.payment_id == ref.payment_id)
        if code is None or code["acquirer_id"] != acquirer.party_id:
            raise missing
        return code

    # --- the wallet's side -----------------------------------------------------------------------

    async def scan(self, wallet: Partner, body: dict[str, Any]) -> dict[str, Any]:
        """userInitiatedPay: claim the code for this payer and open its payment (PROCESSING)."""
        return await self.db.run(self._scan, wallet, body)

    def _scan(self, wallet: Partner, body: dict[str, Any]) -> dict[str, Any]:
        if wallet.role != WALLET:
            raise ApiError("KEY_NOT_FOUND", "only a wallet scans an order code")
        request = ScanRequest.parse(body)
        if not is_pseudonym(request.pseudonym):
            raise ApiError("PARAM_ILLEGAL", "customerPseudonym is not a pseudonym")
        if not (request.code_value.startswith(CODE_PREFIX) and len(request.code_value) == CODE_CHARS):
            raise ApiError("INVALID_CODE", "the code is not an order code of this network")
        code = self._one(order_codes.c.code_value == request.code_value)
        if code is None:
            raise ApiError("INVALID_CODE", "no order has this code")
        code = self._expire_if_due(code)
        if code["status"] == SCANNED:
            return self._scanned_again(wallet, request, code)
        if code["status"] != OPEN:
            raise ApiError("ORDER_IS_CLOSED", "the order code has expired or was cancelled")
        try:
            row = self._claim(wallet, request.pseudonym, code)
        except ClaimLost:
            return self._scanned_again(wallet, request, self._code(code["payment_id"]))
        log.info("order code scanned", extra={"payment_id": row.payment_id, "wallet": wallet.party_id})
        return self._toward_wallet(row, code)

    def _claim(self, wallet: Partner, pseudonym: str, code: dict[str, Any]) -> PaymentRow:
        """Quote, check the payer's limits, and claim the code + insert its payment, in one transaction."""
        now = self.clock()
        quote = self.rates.quote(code["currency"], wallet.currency, now, self.network.gateway.quote_ttl_s)
        wallet_amount = quote.convert(Money(code["currency"], code["amount"]))
        risk.check_amount(wallet.risk, wallet_amount.value)
        row = _payment_row(code, wallet, pseudonym, quote, wallet_amount.value, now)
        try:
            with self.engine.begin() as conn:
                limits = wallet.risk
                if risk.over_velocity(conn, limits, wallet.party_id, pseudonym, wallet_amount.value, now):
                    raise ApiError("RISK_REJECT")
                claimed = conn.execute(
                    order_codes.update()
                    .where(
                        order_codes.c.payment_id == code["payment_id"],
                        order_codes.c.status == OPEN,
                        order_codes.c.expires_at > now,
                    )
                    .values(status=SCANNED, wallet_id=wallet.party_id, updated_at=now)
                ).rowcount
                if not claimed:
                    raise ClaimLost
                bookkeeping.on_accepted(conn, row, now, self.network, self.store.inserting(row))
        except sa.exc.IntegrityError:
            # The acquirer reused this paymentRequestId for a user-presented code meanwhile:
            # that payment stands, this order cannot be paid.
            self._close(code["payment_id"], CANCELLED)
            raise ApiError("ORDER_IS_CLOSED", "the order's paymentRequestId names another payment") from None
        return row

    def _scanned_again(self, wallet: Partner, request: ScanRequest, code: dict[str, Any]) -> dict[str, Any]:
        """A second scan: the same payer again gets the same payment (nothing new); anyone else, closed."""
        if code["status"] == SCANNED:
            payment = self.store.payment(code["payment_id"])
            if (
                payment is not None
                and payment.wallet_id == wallet.party_id
                and payment.pseudonym == request.pseudonym
            ):
                return self._toward_wallet(payment, code)
        raise ApiError("ORDER_IS_CLOSED", "the order code was paid or is being paid")

    def _toward_wallet(self, payment: PaymentRow, code: dict[str, Any]) -> dict[str, Any]:
        """The order as the payer's wallet needs it: what to show, what to debit, whom it is for."""
        return {
            "result": result("SUCCESS"),
            **about(payment),
            "productCode": "IN_STORE_PAYMENT",
            "paymentAmount": Money(payment.currency, payment.amount).to_wire(),
            "payToAmount": Money(payment.wallet_currency, payment.wallet_amount).to_wire(),
            "paymentQuote": {
                "quoteId": payment.quote_id,
                "quotePrice": payment.fx_rate,
                "quoteCurrencyPair": f"{payment.currency}/{payment.wallet_currency}",
                "quoteExpiryTime": _iso(payment.quote_expires_at),
            },
            "order": json.loads(code["order_summary"]),
            "paymentExpiryTime": _iso(code["expires_at"]),
        }

    async def pay_result(self, wallet: Partner, body: dict[str, Any]) -> dict[str, Any]:
        """The wallet's pay answer for a scanned code, reported by its agent: settle the payment."""
        if wallet.role != WALLET:
            raise ApiError("KEY_NOT_FOUND", "only a wallet reports a payment result")
        payment_id = text(body, "paymentRequestId")
        assert payment_id is not None
        payment = await self.db.run(self.store.payment, payment_id)
        code = await self.db.run(self._one, order_codes.c.payment_id == payment_id)
        if payment is None or code is None or payment.wallet_id != wallet.party_id:
            raise ApiError("ORDER_NOT_EXIST", "no scanned order code of this wallet has this id")
        if not isinstance(body.get("result"), dict):
            raise ApiError("PARAM_ILLEGAL", "result is missing or not an object")
        if payment.status == PaymentStatus.PROCESSING:  # once settled, a repeated report changes nothing
            payment = await self.paying.settle_wallet_answer(payment, body)
        return {
            "result": result(payment.result_code),
            "paymentRequestId": payment.payment_id,
            "payToAmount": Money(payment.wallet_currency, payment.wallet_amount).to_wire(),
        }

    # --- state and lookups -----------------------------------------------------------------------

    def _expire_if_due(self, code: dict[str, Any]) -> dict[str, Any]:
        """An open code past its expiry becomes EXPIRED (guarded: a scan that won stays SCANNED)."""
        if code["status"] != OPEN or _aware(code["expires_at"]) > self.clock():
            return code
        self._expire(code)
        return self._code(code["payment_id"])

    def expire_due(self) -> int:
        """Close open codes past their expiry (up to `SWEEP_BATCH`); returns how many."""
        now = self.clock()
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    sa.select(order_codes)
                    .where(order_codes.c.status == OPEN, order_codes.c.expires_at <= now)
                    .order_by(order_codes.c.expires_at)
                    .limit(SWEEP_BATCH)
                )
                .mappings()
                .all()
            )
        return sum(self._expire(dict(code)) for code in due)

    async def sweep(self) -> None:
        """`expire_due` forever (until cancelled), every `SWEEP_S` seconds."""
        while True:
            try:
                await self.db.run(self.expire_due)
            except Exception as exc:  # never let the sweeper kill the service; the next one retries
                log.error("order-code sweep failed: %s", type(exc).__name__)
            await asyncio.sleep(SWEEP_S)

    def _expire(self, code: dict[str, Any]) -> bool:
        """EXPIRED, and the acquirer's FAIL notification queued, in one guarded transaction."""
        now = self.clock()
        with self.engine.begin() as conn:
            closed = conn.execute(
                order_codes.update()
                .where(order_codes.c.payment_id == code["payment_id"], order_codes.c.status == OPEN)
                .values(status=EXPIRED, updated_at=now)
            ).rowcount
            if closed and code["notify_url"]:
                notice = _closed_notification(code)
                self.store.queue_notification(conn, code["payment_id"], code["acquirer_id"], notice, now)
        return bool(closed)

    def _close(self, payment_id: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                order_codes.update()
                .where(order_codes.c.payment_id == payment_id, order_codes.c.status == OPEN)
                .values(status=status, updated_at=self.clock())
            )

    def _one(self, *where: Any) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(order_codes).where(*where)).mappings().first()
        return dict(found) if found is not None else None

    def _code(self, payment_id: str) -> dict[str, Any]:
        code = self._one(order_codes.c.payment_id == payment_id)
        assert code is not None  # order codes are never deleted
        return code

    def _code_by_request(self, acquirer_id: str, request_id: str) -> dict[str, Any] | None:
        return self._one(
            order_codes.c.acquirer_id == acquirer_id, order_codes.c.payment_request_id == request_id
        )


def _closed_notification(code: dict[str, Any]) -> dict[str, Any]:
    """The AMS notifyPayment of an order code that expired unpaid, and where it goes."""
    body = {
        "notifyType": "PAYMENT_RESULT",
        "result": result("ORDER_IS_CLOSED"),
        "paymentRequestId": code["payment_request_id"],
        "paymentId": code["payment_id"],
        "paymentAmount": Money(code["currency"], code["amount"]).to_wire(),
        "paymentCreateTime": _iso(code["created_at"]),
    }
    return {"paymentNotifyUrl": code["notify_url"], "notification": body}


def _summary(order: dict[str, Any]) -> dict[str, Any]:
    """The order fields a payer's wallet shows (merchant data only, bounded), nothing else."""
    merchant = _object(order, "merchant")
    outlet = _object(merchant, "store")
    summary: dict[str, Any] = {k: text(order, k, 256, required=False) for k in _SUMMARY_FIELDS}
    summary["merchant"] = {k: text(merchant, k, 256, required=False) for k in _MERCHANT_FIELDS}
    summary["merchant"]["store"] = {k: text(outlet, k, 256, required=False) for k in _STORE_FIELDS}
    return _without_nulls(summary)


def _payment_row(
    code: dict[str, Any], wallet: Partner, pseudonym: str, quote: Quote, wallet_amount: int, now: datetime
) -> PaymentRow:
    """The payment a claimed code becomes: the row a user-presented code's payment has."""
    return PaymentRow(
        payment_id=code["payment_id"],
        acquirer_id=code["acquirer_id"],
        payment_request_id=code["payment_request_id"],
        fingerprint=code["fingerprint"],
        wallet_id=wallet.party_id,
        currency=code["currency"],
        amount=code["amount"],
        wallet_currency=wallet.currency,
        wallet_amount=wallet_amount,
        quote_id=quote.quote_id,
        fx_rate=str(quote.rate),
        quote_expires_at=quote.expires_at,
        status=PaymentStatus.PROCESSING,
        result_code="PAYMENT_IN_PROCESS",
        pseudonym=pseudonym,
        notify_url=code["notify_url"],
        created_at=now,
        updated_at=now,
    )


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    value = parent.get(name)
    return value if isinstance(value, dict) else {}


def _holds_sealed(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_sealed(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_sealed(v) for v in value)
    return is_sealed(value)


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_nulls(v) if isinstance(v, dict) else v for k, v in value.items() if v is not None}


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # SQLite gives naive UTC


def _iso(moment: datetime) -> str:
    return _aware(moment).replace(microsecond=0).isoformat()
