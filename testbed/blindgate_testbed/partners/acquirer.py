"""The reference acquirer (an ACQP): merchants, its official-SDK client, its notification endpoint.

The acquirer keeps the integration it already has with Alipay+: the official
``global-alipay-sdk-python`` client (``DefaultAlipayClient``), used unchanged, signing with
its merchant RSA key and trusting one RSA public key for answers — here, its blindgate
agent's. :class:`AcquirerClient` only builds the SDK's request objects from the reference
population and parses the JSON the SDK returns.

The backend (:func:`create_acquirer_app`) serves ``paymentNotifyUrl``: it verifies the
notification's RSA256 signature, records it once per ``paymentRequestId`` (redeliveries are
counted, not re-applied) and acknowledges with a signed ``SUCCESS``, as the AMS
``notifyPayment`` contract asks.
"""

from __future__ import annotations

import csv
import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient
from com.alipay.ams.api.model.amount import Amount
from com.alipay.ams.api.model.buyer import Buyer
from com.alipay.ams.api.model.env import Env
from com.alipay.ams.api.model.merchant import Merchant as SdkMerchant
from com.alipay.ams.api.model.order import Order
from com.alipay.ams.api.model.store import Store as SdkStore
from com.alipay.ams.api.request.pay.alipay_pay_cancel_request import AlipayPayCancelRequest
from com.alipay.ams.api.request.pay.alipay_pay_query_request import AlipayPayQueryRequest
from com.alipay.ams.api.request.pay.alipay_refund_query_request import AlipayRefundQueryRequest
from com.alipay.ams.api.request.pay.alipay_refund_request import AlipayRefundRequest
from com.alipay.ams.api.request.pay.order_code_payment_request import OrderCodePaymentRequest
from com.alipay.ams.api.request.pay.user_presented_code_payment_request import UserPresentedCodePaymentRequest
from com.alipay.ams.api.tools import signature_tool
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from blindgate_testbed.partners.signed_http import (
    PartnerKeys,
    Rejected,
    now_iso,
    read_signed_json,
    result,
    signed_json_response,
)
from blindgate_testbed.population import Customer, Merchant, Store

log = logging.getLogger("blindgate_testbed.partners.acquirer")

NOTIFY_PATH = "/acquirer/notify"


class _CachedKeyParsing:
    """The `serialization` module as the SDK sees it, with private-key parsing memoized.

    The SDK parses the merchant's PEM key again on every call, and OpenSSL 3 validates an
    RSA private key on every parse: 44 ms of CPU per call on the development machine, more
    than the rest of the payment path together. Parsing the same bytes gives the same key,
    so memoizing it changes no byte the SDK signs or sends.
    """

    def __init__(self) -> None:
        self._parsed: dict[bytes, Any] = {}
        self._lock = threading.Lock()

    def load_pem_private_key(self, data: bytes, password: bytes | None = None, **kwargs: Any) -> Any:
        with self._lock:
            key = self._parsed.get(data)
        if key is None:
            key = serialization.load_pem_private_key(data, password, **kwargs)
            with self._lock:
                self._parsed[data] = key
        return key

    def __getattr__(self, name: str) -> Any:
        return getattr(serialization, name)


def cache_sdk_key_parsing() -> None:
    """Make the official SDK parse each merchant key once per process (see `_CachedKeyParsing`).

    The SDK's code is untouched: only the name ``serialization`` in its signing module is
    pointed at a memoizing wrapper. Idempotent.
    """
    if not isinstance(signature_tool.serialization, _CachedKeyParsing):
        signature_tool.serialization = _CachedKeyParsing()


class AcquirerCallFailed(Exception):
    """The SDK raised: no answer, a non-200 status, or an answer whose signature did not verify."""


@dataclass(frozen=True)
class Shop:
    """Where a payment happens: a merchant, one of its stores and one of that store's terminals."""

    merchant: Merchant
    store: Store
    terminal: str


class AcquirerClient:
    """The acquirer's unchanged SDK client, pointed at ``agent_url`` (``https://127.0.0.N``)."""

    def __init__(
        self,
        agent_url: str,
        client_id: str,
        merchant_private_key: str,
        agent_public_key: str,
        notify_url: str | None = None,
    ) -> None:
        """Keys in the SDK's format: bare base64 DER (see `blindgate.crypto.signatures`)."""
        self._client = DefaultAlipayClient(agent_url, client_id, merchant_private_key, agent_public_key)
        self.notify_url = notify_url
        self.journal = AcquirerJournal()

    def _execute(self, request: Any) -> dict[str, Any]:
        try:
            answer = json.loads(self._client.execute(request))
        except Exception as exc:  # the SDK raises AlipayApiException, ValueError or socket errors
            raise AcquirerCallFailed(type(exc).__name__) from exc
        if not isinstance(answer, dict):
            raise AcquirerCallFailed("answer is not a JSON object")
        return answer

    def pay_with_code(
        self,
        payment_request_id: str,
        shop: Shop,
        currency: str,
        value: int,
        payment_code: str,
        buyer: Customer | None = None,
        terminal_time: str | None = None,
    ) -> dict[str, Any]:
        """A user-presented-code payment; ``buyer`` adds the payer details a loyalty scheme knows.

        ``terminal_time`` is when the terminal scanned the code (default: now); a retry of the
        same payment passes the first one's, so that its body is the same.
        """
        request = payment_request(
            payment_request_id, shop, currency, value, payment_code, buyer, self.notify_url, terminal_time
        )
        answer = self._execute(request)
        if _succeeded(answer):
            self.journal.paid(answer, currency, value)
        return answer

    def create_order_code(
        self,
        payment_request_id: str,
        shop: Shop,
        currency: str,
        value: int,
        expiry_time: str | None = None,
        terminal_time: str | None = None,
    ) -> dict[str, Any]:
        """A merchant-presented order code (the SDK's OrderCodePaymentRequest): the answer is U with
        ``orderCodeForm.codeDetails[0].codeValue`` to show as a QR code until ``expiry_time``; the
        result follows by notification and inquiry. A retry passes the first call's times."""
        order = _order(payment_request_id, shop, currency, value, None, terminal_time or now_iso())
        request = OrderCodePaymentRequest(
            payment_request_id, order, currency, str(value), self.notify_url, expiry_time
        )
        return self._execute(request)

    def inquiry(self, payment_request_id: str) -> dict[str, Any]:
        request = AlipayPayQueryRequest()
        request.payment_request_id = payment_request_id
        answer = self._execute(request)
        if answer.get("paymentStatus") == "SUCCESS":
            self.journal.paid(answer)
        return answer

    def cancel(self, payment_request_id: str) -> dict[str, Any]:
        request = AlipayPayCancelRequest()
        request.payment_request_id = payment_request_id
        answer = self._execute(request)
        if _succeeded(answer):
            self.journal.cancelled(answer)
        return answer

    def refund(self, refund_request_id: str, payment_id: str, currency: str, value: int) -> dict[str, Any]:
        request = AlipayRefundRequest()
        request.refund_request_id = refund_request_id
        request.payment_id = payment_id
        request.refund_amount = Amount(currency, str(value))
        answer = self._execute(request)
        if _succeeded(answer):
            self.journal.refunded(payment_id, answer, currency, value)
        return answer

    def inquiry_refund(self, refund_request_id: str) -> dict[str, Any]:
        request = AlipayRefundQueryRequest()
        request.refund_request_id = refund_request_id
        answer = self._execute(request)
        amount = answer.get("refundAmount")
        if answer.get("refundStatus") == "SUCCESS" and isinstance(amount, dict):
            currency, value = str(amount.get("currency")), int(amount.get("value", 0))
            self.journal.refunded(str(answer.get("paymentId", "")), answer, currency, value)
        return answer


def order_code_value(answer: dict[str, Any]) -> str | None:
    """The code to render as a QR code from an order-code pay answer, if it holds one."""
    form = answer.get("orderCodeForm")
    details = form.get("codeDetails") if isinstance(form, dict) else None
    first = details[0] if isinstance(details, list) and details else None
    value = first.get("codeValue") if isinstance(first, dict) else None
    return value if isinstance(value, str) else None


def _succeeded(answer: dict[str, Any]) -> bool:
    outcome = answer.get("result")
    return isinstance(outcome, dict) and outcome.get("resultStatus") == "S"


class AcquirerJournal:
    """The acquirer's own record of what its merchants were told succeeded (thread-safe).

    Kept from the gateway's answers as the merchants' terminals saw them: payments by the
    gateway's paymentId, refunds by refundId, cancels. ``export`` writes them in the format
    `blindgate reconcile` reads, amounts signed from the acquirer's side: PAYMENT +amount,
    REFUND -amount, CANCEL -(what was left after refunds) of a payment it saw succeed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._payments: dict[str, tuple[str, int]] = {}
        self._refunds: dict[str, tuple[str, str, int]] = {}
        self._cancels: set[str] = set()

    def paid(self, answer: dict[str, Any], currency: str | None = None, value: int | None = None) -> None:
        """A payment told SUCCESS: the amount asked for (pay) or the one the answer names (inquiry)."""
        amount = answer.get("paymentAmount")
        if currency is None and isinstance(amount, dict):
            currency, value = amount.get("currency"), int(amount.get("value", 0))
        payment_id = answer.get("paymentId")
        if isinstance(payment_id, str) and currency and value:
            with self._lock:
                self._payments[payment_id] = (currency, value)

    def refunded(self, payment_id: str, answer: dict[str, Any], currency: str, value: int) -> None:
        refund_id = answer.get("refundId")
        if isinstance(refund_id, str):
            with self._lock:
                self._refunds[refund_id] = (payment_id, currency, value)

    def cancelled(self, answer: dict[str, Any]) -> None:
        payment_id = answer.get("paymentId")
        if isinstance(payment_id, str):
            with self._lock:
                self._cancels.add(payment_id)

    def records(self) -> list[tuple[str, str, str, int, str]]:
        with self._lock:
            rows = [(pid, "PAYMENT", cur, value, "SUCCESS") for pid, (cur, value) in self._payments.items()]
            rows += [
                (rid, "REFUND", cur, -value, "SUCCESS") for rid, (_, cur, value) in self._refunds.items()
            ]
            for payment_id in sorted(self._cancels & self._payments.keys()):
                currency, value = self._payments[payment_id]
                refunded = sum(v for pid, _, v in self._refunds.values() if pid == payment_id)
                if value > refunded:
                    rows.append((payment_id, "CANCEL", currency, -(value - refunded), "SUCCESS"))
        return sorted(rows)

    def export(self, path: Path) -> int:
        """Write ``records()`` as CSV to ``path``; returns the row count."""
        rows = self.records()
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ("transactionId", "transactionType", "settlementCurrency", "settlementAmount", "status")
            )
            writer.writerows(rows)
        return len(rows)


def payment_request(
    payment_request_id: str,
    shop: Shop,
    currency: str,
    value: int,
    payment_code: str,
    buyer: Customer | None,
    notify_url: str | None = None,
    terminal_time: str | None = None,
) -> UserPresentedCodePaymentRequest:
    """The SDK's request object for a user-presented-code payment at ``shop``."""
    order = _order(payment_request_id, shop, currency, value, buyer, terminal_time or now_iso())
    return UserPresentedCodePaymentRequest(
        payment_request_id, order, currency, str(value), payment_code, notify_url
    )


def _order(
    payment_request_id: str, shop: Shop, currency: str, value: int, buyer: Customer | None, terminal_time: str
) -> Order:
    store = SdkStore()
    store.reference_store_id = shop.store.store_id
    store.store_name = shop.store.name
    store.store_mcc = shop.store.mcc
    merchant = SdkMerchant()
    merchant.reference_merchant_id = shop.merchant.merchant_id
    merchant.merchant_mcc = shop.merchant.mcc
    merchant.merchant_name = shop.merchant.name
    merchant.store = store
    env = Env()
    env.store_terminal_id = shop.terminal
    env.store_terminal_request_time = terminal_time
    order = Order()
    order.reference_order_id = payment_request_id
    order.order_description = f"{shop.store.name} purchase"
    order.order_amount = Amount(currency, str(value))
    order.merchant = merchant
    order.env = env
    if buyer is not None:
        # Personal data the acquirer holds about a loyalty member: the agent must seal all of it.
        env.client_ip = buyer.ip
        env.device_id = buyer.device_id
        order.buyer = Buyer()
        order.buyer.buyer_phone_no = buyer.phone
        order.buyer.buyer_email = buyer.email
    return order


class NotificationBook:
    """The payment results the acquirer was notified of, once each, in its own SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS notifications (payment_request_id TEXT PRIMARY KEY,"
            " payment_id TEXT, result_status TEXT NOT NULL, currency TEXT, value INTEGER,"
            " deliveries INTEGER NOT NULL)"
        )

    def record(self, body: dict[str, Any]) -> None:
        request_id = body.get("paymentRequestId")
        outcome = body.get("result")
        if not isinstance(request_id, str) or not 1 <= len(request_id) <= 64 or not isinstance(outcome, dict):
            raise Rejected("PARAM_ILLEGAL", "paymentRequestId or result is missing")
        amount = body.get("paymentAmount") if isinstance(body.get("paymentAmount"), dict) else {}
        value = amount.get("value") if isinstance(amount, dict) else None
        self._db.execute(
            "INSERT INTO notifications VALUES (?,?,?,?,?,1) ON CONFLICT (payment_request_id)"
            " DO UPDATE SET deliveries = deliveries + 1",
            (
                request_id,
                body.get("paymentId") if isinstance(body.get("paymentId"), str) else None,
                str(outcome.get("resultStatus", "")),
                amount.get("currency") if isinstance(amount, dict) else None,
                int(value) if isinstance(value, str) and value.isdigit() else None,
            ),
        )

    def outcomes(self) -> dict[str, int]:
        rows = self._db.execute("SELECT result_status, COUNT(*) FROM notifications GROUP BY 1").fetchall()
        return {str(status): int(count) for status, count in rows}

    def deliveries(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(deliveries), 0) FROM notifications").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def create_acquirer_app(book: NotificationBook, keys: PartnerKeys) -> Starlette:
    """The acquirer backend's notification endpoint (``NOTIFY_PATH``) and ``/health``."""

    async def notify(request: Request) -> Response:
        try:
            book.record(await read_signed_json(request, keys))
            payload = {"result": result()}
        except Rejected as rejected:
            payload = {"result": result(rejected.code, "F", rejected.message)}
        except Exception as exc:  # never a stack trace to the caller; the class name only in the log
            log.error("notification failed: %s", type(exc).__name__)
            payload = {"result": result("UNKNOWN_EXCEPTION", "U", "internal error")}
        return await signed_json_response(request, payload, keys)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route(NOTIFY_PATH, notify, methods=["POST"]), Route("/health", health, methods=["GET"])]
    )
