"""The gateway's payment operations: pay, inquiry, cancel, refund, refund inquiry.

What the gateway sees and keeps (it is blind): the acquirer and wallet ids, the amounts
and currencies, the FX quote, the wallet's pseudonym of the payer, result codes, and the
payer's customerId sealed to the acquirer. The payer's fields arrive sealed to the wallet
(see `blindgate.agent.policy`); the gateway forwards them to the wallet's agent without
storing or logging them, and cannot open them.

Idempotency: ``(acquirer, paymentRequestId)`` and ``(acquirer, refundRequestId)`` are unique
in the store. The request fingerprint covers the clear fields and the acquirer agent's
``sealedDigest`` (its keyed PRF of the sealed values), so a retry that re-seals the same
values matches while one with another payment code does not (REPEAT_REQ_INCONSISTENT).

Unknown outcomes: a wallet that gives no verified answer in time leaves the payment
PROCESSING (PAYMENT_IN_PROCESS, status U). A replay of the request, an inquiry or a cancel
asks the wallet again (its API is idempotent) and settles it; a refund left U is settled the
same way by a replay or an ``inquiryRefund`` (the wallet's refund is idempotent on its id).
Once the payment's FX quote has expired, a replay or an inquiry no longer asks the wallet to
pay: it closes the payment at the wallet and fails it with FX_QUOTE_EXPIRED
(`_close_expired`), so nothing is captured at a stale rate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from blindgate.api.amounts import Money
from blindgate.api.calls import NoAnswer
from blindgate.api.contexts import SEALED_DIGEST_FIELD
from blindgate.api.models import (
    ROUTING_FIELD,
    WALLET_CANCEL_PATH,
    WALLET_INQUIRY_PATH,
    WALLET_PAY_PATH,
    WALLET_REFUND_PATH,
    PaymentRef,
    PayRequest,
    RefundRef,
    RefundRequest,
)
from blindgate.api.network import ACQUIRER, WALLET, Network, Partner
from blindgate.api.results import RESULTS as _KNOWN_CODES
from blindgate.api.results import ApiError, result
from blindgate.crypto.pseudonyms import is_pseudonym
from blindgate.crypto.sealing import SealedValueInvalid, is_sealed, parse_envelope
from blindgate.gateway import bookkeeping, risk
from blindgate.gateway.calls import PartnerCaller
from blindgate.gateway.fx import RateBook
from blindgate.gateway.group_commit import GroupCommit
from blindgate.ledger.money import proportional_share
from blindgate.ledger.prepared import Prepared
from blindgate.storage.schema import cancel_holds, notifications, payments, refund_shares, refunds

log = logging.getLogger("blindgate.gateway")

# Body fields the gateway fills in toward the wallet; an acquirer may not set them.
GATEWAY_FIELDS = ("acquirerId", "acquirerPaymentRequestId", "payToAmount", "paymentQuote")


# Payment status: PROCESSING (asked the wallet, no answer yet: "U"), SUCCESS, FAIL, CANCELLED.
PROCESSING, SUCCESS, FAIL, CANCELLED = "PROCESSING", "SUCCESS", "FAIL", "CANCELLED"

# A cancel on its way to the wallet holds its payment in ``cancel_holds``. While a payment has a
# row there no refund of it is accepted: the wallet's cancel gives back everything that remains,
# and a refund racing it there could no longer be settled (one whose answer was lost stayed U
# for good, its amount reserved and never booked, while the payer had it all back). The hold is
# taken, and a refund's reservation made, each under the payment row's lock and read after it,
# so the two cannot both pass. It stays while the cancel's outcome is unknown (the wallet
# silent), and goes with the cancel's outcome. Each refund's share of the wallet's currency is
# fixed in ``refund_shares`` when the refund is accepted: a re-driven refund (replay, inquiry)
# asks for exactly the same amount, as the wallet's idempotency requires.

# The pay path's statements, compiled once and run as the driver's SQL (`ledger.prepared`).
_SETTLE = Prepared(
    payments.update().where(
        payments.c.payment_id == sa.bindparam("settled_payment_id"), payments.c.status == PROCESSING
    )
)
_NOTIFY = Prepared(notifications.insert())
_INSERT_PAYMENT = Prepared(payments.insert())


def _drop_cancel_hold(conn: sa.Connection, payment_id: str) -> None:
    conn.execute(cancel_holds.delete().where(cancel_holds.c.payment_id == payment_id))


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_payment_id() -> str:
    """The gateway's own id of a payment: "BG" and 120 random bits."""
    return f"BG{secrets.token_hex(15)}"



def fingerprint(body: dict[str, Any]) -> str:
    """SHA-256 of the request's clear fields and its sealedDigest (sealed values excluded)."""

    def clear(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clear(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clear(v) for v in value]
        return "<sealed>" if is_sealed(value) else value

    return hashlib.sha256(json.dumps(clear(body), sort_keys=True).encode()).hexdigest()


class Payments:
    def __init__(
        self,
        network: Network,
        engine: sa.Engine,
        caller: PartnerCaller,
        rates: RateBook,
        clock: Callable[[], datetime] = utcnow,
        require_sealed: bool = True,
    ) -> None:
        self.network, self.engine, self.caller, self.rates, self.clock = network, engine, caller, rates, clock
        # False only where benchmark or test code builds the gateway to compare against agents
        # that seal nothing; no configuration file or command line can reach it.
        self.require_sealed = require_sealed
        self.group = GroupCommit(engine)
        self.timeout_s = network.gateway.wallet_timeout_s

    # --- pay ---------------------------------------------------------------------------------

    async def pay(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        request = PayRequest.parse(body)
        wallet = self._wallet(request.wallet_id)
        if self.require_sealed:
            self._check_sealed_for(wallet, body)
        if any(name in body for name in GATEWAY_FIELDS):
            raise ApiError("PARAM_ILLEGAL", "the request sets a field only the gateway sets")
        now = self.clock()
        quote = self.rates.quote(
            request.amount.currency, wallet.currency, now, self.network.gateway.quote_ttl_s
        )
        wallet_amount = quote.convert(request.amount)
        risk.check_amount(wallet.risk, wallet_amount.value)
        row = {
            "payment_id": new_payment_id(),
            "acquirer_id": acquirer.party_id,
            "payment_request_id": request.payment_request_id,
            "fingerprint": fingerprint(body),
            "wallet_id": wallet.party_id,
            "currency": request.amount.currency,
            "amount": request.amount.value,
            "wallet_currency": wallet.currency,
            "wallet_amount": wallet_amount.value,
            "quote_id": quote.quote_id,
            "fx_rate": str(quote.rate),
            "quote_expires_at": quote.expires_at,
            "status": PROCESSING,
            "result_code": "PAYMENT_IN_PROCESS",
            "notify_url": request.notify_url,
            "refunded": 0,
            "created_at": now,
            "updated_at": now,
        }
        try:
            await self.group.run(lambda conn: self._accept(conn, row, now))
        except sa.exc.IntegrityError:
            existing = self._payment_by_request(acquirer.party_id, request.payment_request_id)
            if existing is None:  # cannot happen: the unique key that refused us names a row
                raise ApiError("UNKNOWN_EXCEPTION") from None
            if existing["fingerprint"] != row["fingerprint"]:
                raise ApiError("REPEAT_REQ_INCONSISTENT") from None
            if existing["status"] == PROCESSING and self._quote_expired(existing):
                existing = await self._close_expired(existing)
            elif existing["status"] == PROCESSING:
                existing = await self._ask_wallet_to_pay(existing, body)
            return self._pay_answer(existing)
        log.info("payment accepted", extra={"payment_id": row["payment_id"], "wallet": wallet.party_id})
        return self._pay_answer(await self._ask_wallet_to_pay(row, body))

    def _accept(self, conn: sa.Connection, row: dict[str, Any], now: datetime) -> None:
        """The payment's row and its pending hold in the ledger (a duplicate raises IntegrityError)."""
        _INSERT_PAYMENT.execute(conn, row)
        bookkeeping.on_accepted(conn, row, now, self.network)

    async def _ask_wallet_to_pay(self, row: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        wallet = self._wallet(row["wallet_id"])
        quote = {
            "quoteId": row["quote_id"],
            "quotePrice": row["fx_rate"],
            "quoteCurrencyPair": f"{row['currency']}/{row['wallet_currency']}",
            "quoteExpiryTime": row["quote_expires_at"].isoformat(),
        }
        toward_wallet = {
            **{k: v for k, v in body.items() if k != SEALED_DIGEST_FIELD},
            "paymentRequestId": row["payment_id"],
            "acquirerId": row["acquirer_id"],
            "acquirerPaymentRequestId": row["payment_request_id"],
            "payToAmount": Money(row["wallet_currency"], row["wallet_amount"]).to_wire(),
            "paymentQuote": quote,
        }
        try:
            answer = await self.caller.call(wallet, WALLET_PAY_PATH, toward_wallet, self.timeout_s)
        except NoAnswer:
            log.warning("wallet gave no answer", extra={"payment_id": row["payment_id"]})
            return row
        return await self._settle_pay(row, answer)

    async def _settle_pay(self, row: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """Record the wallet's answer to pay (or to an inquiry) on a PROCESSING payment."""
        outcome = answer["result"]
        status = outcome.get("resultStatus")
        if status == "U" or status not in ("S", "F"):
            return row
        code = str(outcome.get("resultCode", "UNKNOWN_EXCEPTION"))
        if status == "F":
            return self._resolve(row, FAIL, code if code in _KNOWN_CODES else "UNKNOWN_EXCEPTION", {})
        pseudonym, sealed_customer = answer.get("customerPseudonym"), answer.get("customerId")
        customer_ok = (
            _sealed_to(sealed_customer, row["acquirer_id"])
            if self.require_sealed
            else _short_text(sealed_customer) is not None
        )
        if not is_pseudonym(pseudonym) or not customer_ok:
            log.error(
                "wallet answer lacks a pseudonym or a sealed customerId",
                extra={"payment_id": row["payment_id"]},
            )
            return row  # unknown outcome: an inquiry will ask again
        found = {
            "pseudonym": pseudonym,
            "customer_sealed": sealed_customer,
            "wallet_payment_id": _short_text(answer.get("paymentId")),
        }
        wallet = self._wallet(row["wallet_id"])

        def capture(conn: sa.Connection) -> tuple[bool, dict[str, Any] | None]:
            # The velocity read and the capture share one transaction: the payer's lock covers both.
            now = self.clock()
            over = risk.over_velocity(
                conn, wallet.risk, wallet.party_id, str(pseudonym), row["wallet_amount"], now
            )
            return over, None if over else self._resolve_in(conn, row, SUCCESS, "SUCCESS", found, now)

        over, settled = await self.group.run(capture)
        if over:
            return await self._reject_for_risk(row, found)
        return settled if settled is not None else self._settled_by_someone_else(row)

    async def _cancel_at_wallet(self, row: dict[str, Any]) -> dict[str, Any]:
        """Ask the wallet to cancel (and give back) a payment; raises NoAnswer on silence."""
        answer: dict[str, Any] = await self.caller.call(
            self._wallet(row["wallet_id"]), WALLET_CANCEL_PATH, self._about(row), self.timeout_s
        )
        return answer

    def _quote_expired(self, row: dict[str, Any]) -> bool:
        return _aware(self.clock()) > _aware(row["quote_expires_at"])

    async def _close_expired(self, row: dict[str, Any]) -> dict[str, Any]:
        """A PROCESSING payment whose quote has expired is closed, never completed at a stale rate.

        The wallet is asked to cancel (idempotent: it gives back a debit the first pay may have
        made, and refuses a late copy of that pay); once it confirms, the payment fails with
        FX_QUOTE_EXPIRED and its pending hold is voided. No confirmation: it stays U.
        """
        try:
            answer = await self._cancel_at_wallet(row)
        except NoAnswer:
            return row
        if answer["result"].get("resultStatus") != "S":
            log.warning("wallet refused to close an expired payment", extra={"payment_id": row["payment_id"]})
            return row
        closed = self._resolve(row, FAIL, "FX_QUOTE_EXPIRED", {})
        if closed["status"] == SUCCESS:  # the first pay's late answer captured it meanwhile; the
            self._cancel(closed)  # wallet has now cancelled it, so we reverse it too
            closed = self._settled_by_someone_else(closed)
        return closed

    async def _reject_for_risk(self, row: dict[str, Any], found: dict[str, Any]) -> dict[str, Any]:
        try:
            answer = await self._cancel_at_wallet(row)
        except NoAnswer:
            return row
        if answer["result"].get("resultStatus") != "S":
            return self._resolve(row, SUCCESS, "SUCCESS", found)  # the wallet kept it: so do we
        return self._resolve(row, FAIL, "RISK_REJECT", {"pseudonym": found["pseudonym"]})

    def _resolve(self, row: dict[str, Any], status: str, code: str, extra: dict[str, Any]) -> dict[str, Any]:
        """PROCESSING -> SUCCESS or FAIL, with its posting and its notification, in one transaction."""
        with self.engine.begin() as conn:
            settled = self._resolve_in(conn, row, status, code, extra, self.clock())
        return settled if settled is not None else self._settled_by_someone_else(row)

    def _resolve_in(
        self,
        conn: sa.Connection,
        row: dict[str, Any],
        status: str,
        code: str,
        extra: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any] | None:
        """The state change, its posting and its notification on ``conn``; None if already settled."""
        changes = {"status": status, "result_code": code, "updated_at": now, **extra}
        changed = _SETTLE.execute(conn, {"settled_payment_id": row["payment_id"], **changes}).rowcount
        if not changed:
            return None
        if status == SUCCESS:
            bookkeeping.on_captured(conn, row["payment_id"], now, self.network)
        else:
            bookkeeping.on_failed(conn, row["payment_id"], now, self.network)
        settled = {**row, "status": status, "result_code": code, "updated_at": now, **extra}
        if settled.get("notify_url"):
            _NOTIFY.execute(
                conn,
                {
                    "payment_id": row["payment_id"],
                    "acquirer_id": row["acquirer_id"],
                    "body": json.dumps(self._notification(settled)),
                    "attempts": 0,
                    "next_at": now,
                },
            )
        return settled

    def _settled_by_someone_else(self, row: dict[str, Any]) -> dict[str, Any]:
        fresh = self._payment(row["payment_id"])  # someone else settled it first: theirs stands
        assert fresh is not None
        return fresh

    def _pay_answer(self, row: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "result": result(row["result_code"]),
            "paymentRequestId": row["payment_request_id"],
            "paymentId": row["payment_id"],
            "paymentAmount": Money(row["currency"], row["amount"]).to_wire(),
            "paymentCreateTime": _iso(row["created_at"]),
        }
        if row["status"] in (SUCCESS, CANCELLED):
            answer["paymentTime"] = _iso(row["updated_at"])
            answer["pspCustomerInfo"] = {"pspName": row["wallet_id"]}
        if row["status"] in (SUCCESS, CANCELLED) and row["customer_sealed"] is not None:
            answer["customerId"] = row["customer_sealed"]
        if row["currency"] != row["wallet_currency"]:
            answer["paymentQuote"] = {
                "quoteId": row["quote_id"],
                "quotePrice": row["fx_rate"],
                "quoteCurrencyPair": f"{row['currency']}/{row['wallet_currency']}",
            }
        return answer

    def _notification(self, row: dict[str, Any]) -> dict[str, Any]:
        """The AMS notifyPayment body, and where the acquirer's agent must deliver it."""
        body = {
            "notifyType": "PAYMENT_RESULT",
            "result": result(row["result_code"]),
            "paymentRequestId": row["payment_request_id"],
            "paymentId": row["payment_id"],
            "paymentAmount": Money(row["currency"], row["amount"]).to_wire(),
            "paymentCreateTime": _iso(row["created_at"]),
        }
        if row["status"] == SUCCESS:
            body["paymentTime"] = _iso(row["updated_at"])
            body["customerId"] = row["customer_sealed"]
        return {"paymentNotifyUrl": row["notify_url"], "notification": body}

    # --- for the order-code flow (`blindgate.gateway.order_codes`) ------------------------------

    def answer_for(self, row: dict[str, Any]) -> dict[str, Any]:
        """The pay answer of a stored payment (an order code replayed after its scan)."""
        return self._pay_answer(row)

    async def settle_wallet_answer(self, row: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
        """Record a wallet's pay answer that its agent reports (an order code's payer paid or not)."""
        return await self._settle_pay(row, answer)

    # --- inquiry and cancel --------------------------------------------------------------------

    async def inquiry(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        row = self._find(acquirer, PaymentRef.parse(body))
        if row["status"] == PROCESSING and self._quote_expired(row):
            row = await self._close_expired(row)
        elif row["status"] == PROCESSING:
            try:
                answer = await self.caller.call(
                    self._wallet(row["wallet_id"]),
                    WALLET_INQUIRY_PATH,
                    self._about(row),
                    self.timeout_s,
                )
                payment_result = answer.get("paymentResult")
                if answer["result"].get("resultStatus") == "S" and isinstance(payment_result, dict):
                    if payment_result.get("resultCode") == "ORDER_NOT_EXIST":
                        payment_result = result("PAYMENT_IN_PROCESS")  # not arrived yet; cancel closes it
                    row = await self._settle_pay(row, {**answer, "result": payment_result})
            except NoAnswer:
                pass
        paid = self._pay_answer(row)
        status = {PROCESSING: "PROCESSING", SUCCESS: "SUCCESS", FAIL: "FAIL", CANCELLED: "CANCELLED"}[
            row["status"]
        ]
        return {
            **{k: v for k, v in paid.items() if k != "result"},
            "result": result("SUCCESS"),
            "paymentResult": paid["result"],
            "paymentStatus": status,
        }

    async def cancel(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        row = self._find(acquirer, PaymentRef.parse(body))
        if self._hold_for_cancel(row["payment_id"]):
            try:
                answer = await self._cancel_at_wallet(row)
            except NoAnswer:  # the hold stays: the wallet may have cancelled
                raise ApiError("UNKNOWN_EXCEPTION", "the wallet did not answer; cancel again") from None
            outcome = answer["result"]
            if outcome.get("resultStatus") != "S":
                if outcome.get("resultStatus") == "F":  # the wallet did not cancel
                    self._release_cancel_hold(row["payment_id"])
                code = str(outcome.get("resultCode"))
                raise ApiError(code if code in _KNOWN_CODES else "UNKNOWN_EXCEPTION")
            self._cancel(row)
        return {
            "result": result("SUCCESS"),
            "paymentRequestId": row["payment_request_id"],
            "paymentId": row["payment_id"],
            "cancelTime": _iso(self.clock()),
        }

    @staticmethod
    def _about(row: dict[str, Any]) -> dict[str, Any]:
        """Names a payment toward its wallet: the gateway's id, and the acquirer's (the seal context)."""
        return {
            "paymentRequestId": row["payment_id"],
            "acquirerId": row["acquirer_id"],
            "acquirerPaymentRequestId": row["payment_request_id"],
        }

    def _hold_for_cancel(self, payment_id: str) -> bool:
        """Hold the payment for a cancel (see ``cancel_holds``); False if it is no longer open.

        Refused while a refund of it is in process: the wallet may already have given that
        refund back, so a cancel now would reverse the remainder without it.
        """
        with self.engine.begin() as conn:
            # The row's lock first (an update that changes nothing), as a refund's reservation
            # takes it; what follows reads after it, so a refund committed meanwhile is seen.
            open_ = conn.execute(
                payments.update()
                .where(payments.c.payment_id == payment_id, payments.c.status.in_((PROCESSING, SUCCESS)))
                .values(status=payments.c.status)
            ).rowcount
            if not open_:
                return False
            refunding = conn.execute(
                sa.select(refunds.c.refund_id)
                .where(refunds.c.payment_id == payment_id, refunds.c.status == PROCESSING)
                .limit(1)
            ).first()
            if refunding is not None:
                raise ApiError(
                    "ORDER_STATUS_INVALID", "a refund of this payment is in process; inquire it first"
                )
            if not self._cancel_held(conn, payment_id):  # else a cancel asked again
                conn.execute(cancel_holds.insert().values(payment_id=payment_id, created_at=self.clock()))
        return True

    @staticmethod
    def _cancel_held(conn: sa.Connection, payment_id: str) -> bool:
        held = conn.execute(
            sa.select(cancel_holds.c.payment_id).where(cancel_holds.c.payment_id == payment_id)
        )
        return held.first() is not None

    def _release_cancel_hold(self, payment_id: str) -> None:
        with self.engine.begin() as conn:
            _drop_cancel_hold(conn, payment_id)

    def _cancel(self, row: dict[str, Any]) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            changed = conn.execute(
                payments.update()
                .where(
                    payments.c.payment_id == row["payment_id"], payments.c.status.in_((PROCESSING, SUCCESS))
                )
                .values(status=CANCELLED, result_code="ORDER_IS_CLOSED", updated_at=now)
            ).rowcount
            _drop_cancel_hold(conn, row["payment_id"])
            if changed:
                bookkeeping.on_cancelled(conn, row["payment_id"], now, self.network)

    # --- refunds --------------------------------------------------------------------------------

    async def refund(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        request = RefundRequest.parse(body)
        payment = self._find(acquirer, PaymentRef(None, request.payment_id))
        if request.amount.currency != payment["currency"]:
            raise ApiError("CURRENCY_NOT_SUPPORT", "a refund is in the payment's currency")
        now = self.clock()
        row = {
            "refund_id": f"BR{secrets.token_hex(15)}",
            "acquirer_id": acquirer.party_id,
            "refund_request_id": request.refund_request_id,
            "payment_id": payment["payment_id"],
            "fingerprint": fingerprint(body),
            "currency": request.amount.currency,
            "amount": request.amount.value,
            "status": PROCESSING,
            "result_code": "PAYMENT_IN_PROCESS",
            "created_at": now,
        }
        try:
            self._accept_refund(payment, row)
        except sa.exc.IntegrityError:
            existing = self._refund_by_request(acquirer.party_id, request.refund_request_id)
            if existing is None:
                raise ApiError("UNKNOWN_EXCEPTION") from None
            if existing["fingerprint"] != row["fingerprint"]:
                raise ApiError("REPEAT_REQ_INCONSISTENT") from None
            row = existing
        if row["status"] == PROCESSING:
            row = await self._ask_wallet_to_refund(payment, row)
        return self._refund_answer(row)

    def _accept_refund(self, payment: dict[str, Any], row: dict[str, Any]) -> None:
        """Store the refund, reserve its amount and fix its wallet share, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(refunds.insert().values(**row))
            share = self._reserve_refund(conn, payment, row["amount"])
            conn.execute(refund_shares.insert(), {"refund_id": row["refund_id"], "wallet_amount": share})

    def _reserve_refund(self, conn: sa.Connection, payment: dict[str, Any], amount: int) -> int:
        """Take ``amount`` from what remains refundable, atomically: racing refunds cannot overdraw.

        Answers the refund's share of the wallet's amount: the cumulative share of the range it
        reserved, read under the reservation's lock, so racing refunds get adjacent ranges and
        refunds that all succeed give back exactly what was taken.
        """
        if payment["status"] != SUCCESS:
            raise ApiError("ORDER_STATUS_INVALID", "only a successful payment can be refunded")
        taken = conn.execute(
            payments.update()
            .where(
                payments.c.payment_id == payment["payment_id"],
                payments.c.status == SUCCESS,
                payments.c.refunded + amount <= payments.c.amount,
            )
            .values(refunded=payments.c.refunded + amount)
        ).rowcount
        if not taken:
            raise ApiError("REFUND_AMOUNT_EXCEED")
        if self._cancel_held(conn, payment["payment_id"]):  # read under the row's lock just taken
            raise ApiError("ORDER_STATUS_INVALID", "a cancel of this payment is in process")
        reserved = conn.execute(
            sa.select(payments.c.refunded).where(payments.c.payment_id == payment["payment_id"])
        ).scalar_one()
        return proportional_share(payment["wallet_amount"], reserved - amount, reserved, payment["amount"])

    async def _ask_wallet_to_refund(self, payment: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
        """Ask (or ask again: the wallet's refund is idempotent) and settle the outcome once."""
        wallet_share = self._wallet_share(payment, row)
        toward_wallet = {
            **self._about(payment),
            "refundRequestId": row["refund_id"],
            "refundAmount": Money(payment["wallet_currency"], wallet_share).to_wire(),
        }
        try:
            answer = await self.caller.call(
                self._wallet(payment["wallet_id"]), WALLET_REFUND_PATH, toward_wallet, self.timeout_s
            )
        except NoAnswer:
            return row
        outcome = answer["result"]
        if outcome.get("resultStatus") not in ("S", "F"):
            return row
        code = str(outcome.get("resultCode"))
        code = code if code in _KNOWN_CODES else "UNKNOWN_EXCEPTION"
        now = self.clock()
        with self.engine.begin() as conn:
            status = SUCCESS if outcome["resultStatus"] == "S" else FAIL
            changed = conn.execute(
                refunds.update()
                .where(refunds.c.refund_id == row["refund_id"], refunds.c.status == PROCESSING)
                .values(status=status, result_code=code)
            ).rowcount
            if changed and status == SUCCESS:
                bookkeeping.on_refunded(
                    conn, payment["payment_id"], row["refund_id"], row["amount"], now, self.network
                )
            elif changed:  # give the reservation back
                conn.execute(
                    payments.update()
                    .where(payments.c.payment_id == payment["payment_id"])
                    .values(refunded=payments.c.refunded - row["amount"])
                )
        fresh = self._refund(row["refund_id"])
        assert fresh is not None
        return fresh

    def _wallet_share(self, payment: dict[str, Any], row: dict[str, Any]) -> int:
        """The refund's share fixed at acceptance (a refund stored before shares were: computed)."""
        share = self._one(refund_shares, refund_shares.c.refund_id == row["refund_id"])
        if share is not None:
            return int(share["wallet_amount"])
        before = self._refunded_before(payment["payment_id"], row["refund_id"])
        return proportional_share(payment["wallet_amount"], before, before + row["amount"], payment["amount"])

    def _refunded_before(self, payment_id: str, refund_id: str) -> int:
        """Refunds of the payment that succeeded, other than this one (the cumulative share's base)."""
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(refunds.c.amount), 0)).where(
                    refunds.c.payment_id == payment_id,
                    refunds.c.status == SUCCESS,
                    refunds.c.refund_id != refund_id,
                )
            ).scalar_one()
        return int(total)

    def _refund_answer(self, row: dict[str, Any]) -> dict[str, Any]:
        answer = {
            "result": result(row["result_code"]),
            "refundRequestId": row["refund_request_id"],
            "refundId": row["refund_id"],
            "paymentId": row["payment_id"],
            "refundAmount": Money(row["currency"], row["amount"]).to_wire(),
        }
        if row["status"] == SUCCESS:
            answer["refundTime"] = _iso(row["created_at"])
        return answer

    async def inquiry_refund(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        ref = RefundRef.parse(body)
        row = self._refund_by_request(acquirer.party_id, ref.refund_request_id)
        if row is None:
            raise ApiError("ORDER_NOT_EXIST", "no refund with this refundRequestId")
        if row["status"] == PROCESSING:  # left U (no answer in time): ask the wallet again
            payment = self._payment(row["payment_id"])
            assert payment is not None
            row = await self._ask_wallet_to_refund(payment, row)
        answer = self._refund_answer(row)
        status = {PROCESSING: "PROCESSING", SUCCESS: "SUCCESS", FAIL: "FAIL"}[row["status"]]
        return {
            **answer,
            "result": result("SUCCESS"),
            "refundStatus": status,
            "refundResult": answer["result"],
        }

    # --- lookups ----------------------------------------------------------------------------------

    def _wallet(self, wallet_id: str) -> Partner:
        wallet = self.network.partner(wallet_id)
        if wallet is None or wallet.role != WALLET:
            raise ApiError("PARTNER_NOT_EXIST", "no wallet of that id in this network")
        return wallet

    def _check_sealed_for(self, wallet: Partner, body: dict[str, Any]) -> None:
        """The payment code must arrive sealed to the routed wallet: the gateway never takes it in clear."""
        method = body["paymentMethod"]
        code = method.get("paymentMethodId")
        if code is None:
            return  # a merchant-presented order code: the payer is not known yet
        try:
            envelope = parse_envelope(code)
        except SealedValueInvalid:
            raise ApiError("PARAM_ILLEGAL", "paymentMethod.paymentMethodId must be sealed") from None
        if envelope.kid != wallet.party_id:
            raise ApiError("KEY_NOT_FOUND", f"paymentMethod.paymentMethodId is not sealed to {ROUTING_FIELD}")

    def _find(self, acquirer: Partner, ref: PaymentRef) -> dict[str, Any]:
        if acquirer.role != ACQUIRER:
            raise ApiError("KEY_NOT_FOUND", "only an acquirer calls this API")
        if ref.payment_request_id is not None:
            row = self._payment_by_request(acquirer.party_id, ref.payment_request_id)
        else:
            assert ref.payment_id is not None
            row = self._payment(ref.payment_id)
        if row is None or row["acquirer_id"] != acquirer.party_id:
            raise ApiError("ORDER_NOT_EXIST", "no payment with this id")
        return row

    def _one(self, table: sa.Table, *where: Any) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(table).where(*where)).mappings().first()
        return dict(found) if found is not None else None

    def _payment(self, payment_id: str) -> dict[str, Any] | None:
        return self._one(payments, payments.c.payment_id == payment_id)

    def _payment_by_request(self, acquirer_id: str, request_id: str) -> dict[str, Any] | None:
        return self._one(
            payments, payments.c.acquirer_id == acquirer_id, payments.c.payment_request_id == request_id
        )

    def _refund(self, refund_id: str) -> dict[str, Any] | None:
        return self._one(refunds, refunds.c.refund_id == refund_id)

    def _refund_by_request(self, acquirer_id: str, request_id: str) -> dict[str, Any] | None:
        return self._one(
            refunds, refunds.c.acquirer_id == acquirer_id, refunds.c.refund_request_id == request_id
        )


def _aware(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the store writes UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _iso(moment: datetime) -> str:
    return _aware(moment).replace(microsecond=0).isoformat()


def _sealed_to(value: object, party_id: str) -> bool:
    try:
        return isinstance(value, str) and parse_envelope(value).kid == party_id
    except SealedValueInvalid:
        return False


def _short_text(value: object) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= 64 else None
