"""Pay and inquiry: a user-presented payment from the acquirer's request to its outcome.

The pay path: parse and check the request, quote FX, check the wallet's amount limit, store
the payment (PROCESSING) with its ledger hold in one transaction (group commit: the
transactions that reach the store together commit together, `blindgate.gateway.group_commit`),
ask the wallet, then record its answer: capture (after the payer's velocity check, in the same
transaction) or void, with the acquirer's notification in the outbox.

Idempotency: ``(acquirer, paymentRequestId)`` is unique in the store. The request fingerprint
covers the clear fields and the acquirer agent's ``sealedDigest`` (its keyed PRF of the sealed
values), so a retry that re-seals the same values matches while one with another payment code
does not (REPEAT_REQ_INCONSISTENT).

Unknown outcomes: a wallet that gives no verified answer in time leaves the payment
PROCESSING (PAYMENT_IN_PROCESS, status U). A replay of the request, an inquiry or a cancel
asks the wallet again (its API is idempotent) and settles it. Once the payment's FX quote has
expired, a replay or an inquiry no longer asks the wallet to pay: it closes the payment at the
wallet and fails it with FX_QUOTE_EXPIRED (`Pay.close_expired`), so nothing is captured at a
stale rate.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from blindgate.api.amounts import Money
from blindgate.api.calls import NoAnswer
from blindgate.api.contexts import SEALED_DIGEST_FIELD
from blindgate.api.models import ROUTING_FIELD, WALLET_INQUIRY_PATH, WALLET_PAY_PATH, PaymentRef, PayRequest
from blindgate.api.network import Partner
from blindgate.api.results import ApiError, result
from blindgate.crypto.pseudonyms import is_pseudonym
from blindgate.crypto.sealing import SealedValueInvalid, has_envelope_form, parse_envelope
from blindgate.gateway import bookkeeping, risk
from blindgate.gateway.cancels import Cancels
from blindgate.gateway.context import (
    PaymentContext,
    about,
    aware,
    iso,
    known_code,
    sealed_to,
    short_text,
)
from blindgate.gateway.fx import RateBook
from blindgate.gateway.group_commit import GroupCommit
from blindgate.gateway.repository import Payer, PaymentRow, PaymentStatus

log = logging.getLogger("blindgate.gateway")

# Body fields the gateway fills in toward the wallet; an acquirer may not set them.
GATEWAY_FIELDS = ("acquirerId", "acquirerPaymentRequestId", "payToAmount", "paymentQuote")

PROCESSING, SUCCESS, FAIL, CANCELLED = (
    PaymentStatus.PROCESSING,
    PaymentStatus.SUCCESS,
    PaymentStatus.FAIL,
    PaymentStatus.CANCELLED,
)


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
        return "<sealed>" if has_envelope_form(value) else value

    return hashlib.sha256(json.dumps(clear(body), sort_keys=True).encode()).hexdigest()


class Pay:
    def __init__(
        self, context: PaymentContext, rates: RateBook, cancels: Cancels, require_sealed: bool = True
    ) -> None:
        self.context, self.store, self.db = context, context.store, context.db
        self.rates, self.cancels = rates, cancels
        # False only where benchmark or test code builds the gateway to compare against agents
        # that seal nothing; no configuration file or command line can reach it.
        self.require_sealed = require_sealed
        self.group = GroupCommit(context.db)

    async def pay(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        request = PayRequest.parse(body)
        wallet = self.context.wallet(request.wallet_id)
        if self.require_sealed:
            _check_sealed_for(wallet, body)
        if any(name in body for name in GATEWAY_FIELDS):
            raise ApiError("PARAM_ILLEGAL", "the request sets a field only the gateway sets")
        now = self.context.clock()
        network = self.context.network
        quote = self.rates.quote(request.amount.currency, wallet.currency, now, network.gateway.quote_ttl_s)
        wallet_amount = quote.convert(request.amount)
        risk.check_amount(wallet.risk, wallet_amount.value)
        row = PaymentRow(
            payment_id=new_payment_id(),
            acquirer_id=acquirer.party_id,
            payment_request_id=request.payment_request_id,
            fingerprint=fingerprint(body),
            wallet_id=wallet.party_id,
            currency=request.amount.currency,
            amount=request.amount.value,
            wallet_currency=wallet.currency,
            wallet_amount=wallet_amount.value,
            quote_id=quote.quote_id,
            fx_rate=str(quote.rate),
            quote_expires_at=quote.expires_at,
            status=PROCESSING,
            result_code="PAYMENT_IN_PROCESS",
            notify_url=request.notify_url,
            created_at=now,
            updated_at=now,
        )
        try:
            await self.group.run(lambda conn: self._accept(conn, row))
        except sa.exc.IntegrityError:
            return self.answer(await self._replayed(acquirer, row, body))
        # Not INFO: every request already has its line (`blindgate.net.observe`), and the row its time.
        log.debug("payment accepted", extra={"payment_id": row.payment_id, "wallet": wallet.party_id})
        return self.answer(await self._ask_wallet_to_pay(row, body))

    def _accept(self, conn: sa.Connection, row: PaymentRow) -> None:
        """The payment's row and its pending hold in the ledger (a duplicate raises IntegrityError)."""
        bookkeeping.on_accepted(conn, row, row.created_at, self.context.network, self.store.inserting(row))

    async def _replayed(self, acquirer: Partner, row: PaymentRow, body: dict[str, Any]) -> PaymentRow:
        """The stored payment a repeated request names, driven on if still in process."""
        existing = await self.db.run(self.store.payment_by_request, acquirer.party_id, row.payment_request_id)
        if existing is None:  # cannot happen: the unique key that refused us names a row
            raise ApiError("UNKNOWN_EXCEPTION") from None
        if existing.fingerprint != row.fingerprint:
            raise ApiError("REPEAT_REQ_INCONSISTENT") from None
        if existing.status == PROCESSING and self._quote_expired(existing):
            return await self.close_expired(existing)
        if existing.status == PROCESSING:
            return await self._ask_wallet_to_pay(existing, body)
        return existing

    async def _ask_wallet_to_pay(self, row: PaymentRow, body: dict[str, Any]) -> PaymentRow:
        quote = {
            "quoteId": row.quote_id,
            "quotePrice": row.fx_rate,
            "quoteCurrencyPair": f"{row.currency}/{row.wallet_currency}",
            "quoteExpiryTime": row.quote_expires_at.isoformat(),
        }
        toward_wallet = {
            **{k: v for k, v in body.items() if k != SEALED_DIGEST_FIELD},
            **about(row),
            "payToAmount": Money(row.wallet_currency, row.wallet_amount).to_wire(),
            "paymentQuote": quote,
        }
        try:
            answer = await self.context.ask(row.wallet_id, WALLET_PAY_PATH, toward_wallet)
        except NoAnswer:
            log.warning("wallet gave no answer", extra={"payment_id": row.payment_id})
            return row
        return await self.settle_wallet_answer(row, answer)

    async def settle_wallet_answer(self, row: PaymentRow, answer: dict[str, Any]) -> PaymentRow:
        """Record the wallet's answer to pay (or to an inquiry, or one its agent reports for an
        order code) on a PROCESSING payment."""
        outcome = answer["result"]
        status = outcome.get("resultStatus")
        if status == "U" or status not in ("S", "F"):
            return row
        if status == "F":
            return await self._resolve(row, FAIL, known_code(outcome.get("resultCode", "UNKNOWN_EXCEPTION")))
        pseudonym, sealed_customer = answer.get("customerPseudonym"), answer.get("customerId")
        customer_ok = (
            sealed_to(sealed_customer, row.acquirer_id)
            if self.require_sealed
            else short_text(sealed_customer) is not None
        )
        if not is_pseudonym(pseudonym) or not customer_ok:
            log.error(
                "wallet answer lacks a pseudonym or a sealed customerId", extra={"payment_id": row.payment_id}
            )
            return row  # unknown outcome: an inquiry will ask again
        payer = Payer(str(pseudonym), str(sealed_customer), short_text(answer.get("paymentId")))
        wallet = self.context.wallet(row.wallet_id)

        def capture(conn: sa.Connection) -> tuple[bool, PaymentRow | None]:
            # The velocity read and the capture share one transaction: the payer's lock covers both.
            now = self.context.clock()
            over = risk.over_velocity(
                conn, wallet.risk, wallet.party_id, payer.pseudonym, row.wallet_amount, now
            )
            return over, None if over else self._resolve_in(conn, row, SUCCESS, "SUCCESS", now, payer)

        over, settled = await self.group.run(capture)
        if over:
            return await self._reject_for_risk(row, payer)
        return settled if settled is not None else await self.context.current(row)

    def _quote_expired(self, row: PaymentRow) -> bool:
        return aware(self.context.clock()) > aware(row.quote_expires_at)

    async def close_expired(self, row: PaymentRow) -> PaymentRow:
        """A PROCESSING payment whose quote has expired is closed, never completed at a stale rate.

        The wallet is asked to cancel (idempotent: it gives back a debit the first pay may have
        made, and refuses a late copy of that pay); once it confirms, the payment fails with
        FX_QUOTE_EXPIRED and its pending hold is voided. No confirmation: it stays U.
        """
        try:
            answer = await self.cancels.at_wallet(row)
        except NoAnswer:
            return row
        if answer["result"].get("resultStatus") != "S":
            log.warning("wallet refused to close an expired payment", extra={"payment_id": row.payment_id})
            return row
        closed = await self._resolve(row, FAIL, "FX_QUOTE_EXPIRED")
        if closed.status == SUCCESS:  # the first pay's late answer captured it meanwhile; the
            await self.cancels.reverse(closed)  # wallet has now cancelled it, so we reverse it too
            closed = await self.context.current(closed)
        return closed

    async def _reject_for_risk(self, row: PaymentRow, payer: Payer) -> PaymentRow:
        try:
            answer = await self.cancels.at_wallet(row)
        except NoAnswer:
            return row
        if answer["result"].get("resultStatus") != "S":
            return await self._resolve(row, SUCCESS, "SUCCESS", payer)  # the wallet kept it: so do we
        return await self._resolve(row, FAIL, "RISK_REJECT", Payer(payer.pseudonym))

    async def _resolve(
        self, row: PaymentRow, status: PaymentStatus, code: str, payer: Payer | None = None
    ) -> PaymentRow:
        """PROCESSING -> SUCCESS or FAIL, with its posting and its notification, in one transaction."""
        now = self.context.clock()
        settled = await self.db.transaction(
            lambda conn: self._resolve_in(conn, row, status, code, now, payer)
        )
        return settled if settled is not None else await self.context.current(row)

    def _resolve_in(
        self,
        conn: sa.Connection,
        row: PaymentRow,
        status: PaymentStatus,
        code: str,
        now: datetime,
        payer: Payer | None = None,
    ) -> PaymentRow | None:
        """The state change, its posting and its notification on ``conn``; None if already settled."""
        settled = row.settled(status, code, now, payer)
        notice = (
            self.store.notifying(row.payment_id, row.acquirer_id, _notification(settled), now)
            if settled.notify_url
            else None
        )
        gate = self.store.settling(row, status, code, now, payer)
        posted = bookkeeping.on_settled(
            conn, row.payment_id, status == SUCCESS, now, self.context.network, gate=gate, rider=notice
        )
        return settled if posted else None

    async def inquiry(self, acquirer: Partner, body: dict[str, Any]) -> dict[str, Any]:
        row = await self.context.find(acquirer, PaymentRef.parse(body))
        if row.status == PROCESSING and self._quote_expired(row):
            row = await self.close_expired(row)
        elif row.status == PROCESSING:
            row = await self._ask_wallet_again(row)
        paid = self.answer(row)
        return {
            **{k: v for k, v in paid.items() if k != "result"},
            "result": result("SUCCESS"),
            "paymentResult": paid["result"],
            "paymentStatus": row.status.value,
        }

    async def _ask_wallet_again(self, row: PaymentRow) -> PaymentRow:
        """Inquire a PROCESSING payment at its wallet and record what it says."""
        try:
            answer = await self.context.ask(row.wallet_id, WALLET_INQUIRY_PATH, about(row))
        except NoAnswer:
            return row
        payment_result = answer.get("paymentResult")
        if answer["result"].get("resultStatus") == "S" and isinstance(payment_result, dict):
            if payment_result.get("resultCode") == "ORDER_NOT_EXIST":
                payment_result = result("PAYMENT_IN_PROCESS")  # not arrived yet; cancel closes it
            return await self.settle_wallet_answer(row, {**answer, "result": payment_result})
        return row

    @staticmethod
    def answer(row: PaymentRow) -> dict[str, Any]:
        """The pay answer of a stored payment (a replay, an order code scanned since, an inquiry)."""
        answer: dict[str, Any] = {
            "result": result(row.result_code),
            "paymentRequestId": row.payment_request_id,
            "paymentId": row.payment_id,
            "paymentAmount": Money(row.currency, row.amount).to_wire(),
            "paymentCreateTime": iso(row.created_at),
        }
        if row.status in (SUCCESS, CANCELLED):
            answer["paymentTime"] = iso(row.updated_at)
            answer["pspCustomerInfo"] = {"pspName": row.wallet_id}
            if row.customer_sealed is not None:
                answer["customerId"] = row.customer_sealed
        if row.currency != row.wallet_currency:
            answer["paymentQuote"] = {
                "quoteId": row.quote_id,
                "quotePrice": row.fx_rate,
                "quoteCurrencyPair": f"{row.currency}/{row.wallet_currency}",
            }
        return answer


def _notification(row: PaymentRow) -> dict[str, Any]:
    """The AMS notifyPayment body, and where the acquirer's agent must deliver it."""
    body: dict[str, Any] = {
        "notifyType": "PAYMENT_RESULT",
        "result": result(row.result_code),
        "paymentRequestId": row.payment_request_id,
        "paymentId": row.payment_id,
        "paymentAmount": Money(row.currency, row.amount).to_wire(),
        "paymentCreateTime": iso(row.created_at),
    }
    if row.status == SUCCESS:
        body["paymentTime"] = iso(row.updated_at)
        body["customerId"] = row.customer_sealed
    return {"paymentNotifyUrl": row.notify_url, "notification": body}


def _check_sealed_for(wallet: Partner, body: dict[str, Any]) -> None:
    """The payment code must arrive sealed to the routed wallet: the gateway never takes it in clear."""
    code = body["paymentMethod"].get("paymentMethodId")
    if code is None:
        return  # a merchant-presented order code: the payer is not known yet
    try:
        envelope = parse_envelope(code)
    except SealedValueInvalid:
        raise ApiError("PARAM_ILLEGAL", "paymentMethod.paymentMethodId must be sealed") from None
    if envelope.kid != wallet.party_id:
        raise ApiError("KEY_NOT_FOUND", f"paymentMethod.paymentMethodId is not sealed to {ROUTING_FIELD}")
