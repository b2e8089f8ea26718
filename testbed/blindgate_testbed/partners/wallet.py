"""The reference wallet backend (an MPP): accounts, balances, payment codes, debits, refunds.

It serves the Alipay+ wallet-side API exactly as a wallet integrated with Alipay+ does —
``/aps/api/v1/payments/pay``, ``cancelPayment``, ``refund`` and ``inquiryPayment``, signed
RSA256 both ways — so the blindgate wallet agent can sit in front of it with no change here.
It holds its customers' personal data in clear, in its own SQLite file: it is the party
those data belong with.

Rules (the wallet's, stated so tests can hold them):
- The debit is in the wallet's currency: ``payToAmount`` when given, else ``paymentAmount``;
  any other currency is ``CURRENCY_NOT_SUPPORT``. Balances never go below zero
  (``USER_BALANCE_NOT_ENOUGH``).
- Idempotency on ``paymentRequestId`` / ``refundRequestId``: a replay returns the stored
  answer; a replay with other business fields returns ``REPEAT_REQ_INCONSISTENT``.
- ``cancelPayment`` gives back what is left of a successful payment; cancelling a request
  the wallet has not seen closes it, so a late ``pay`` with that id gets ``ORDER_IS_CLOSED``.
- A refund may be in the wallet's currency or in the payment's order currency; the latter
  gives back ``floor(refund × debit / order amount)``, and the refund that completes the
  order gives back exactly what is left, so full refunds are exact.
Every operation is one SQLite transaction: it happens entirely or not at all.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import logging
import secrets
import sqlite3
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from blindgate.crypto.errors import InvalidSignature
from blindgate.crypto.signatures import verify_message
from blindgate_testbed.partners.signed_http import (
    PartnerKeys,
    Rejected,
    now_iso,
    read_signed_json,
    result,
    signed_json_response,
    signed_request_headers,
)
from blindgate_testbed.population import PAYMENT_CODE_DIGITS, Wallet

log = logging.getLogger("blindgate_testbed.partners.wallet")

PAY_PATH = "/aps/api/v1/payments/pay"
CANCEL_PATH = "/aps/api/v1/payments/cancelPayment"
REFUND_PATH = "/aps/api/v1/payments/refund"
INQUIRY_PATH = "/aps/api/v1/payments/inquiryPayment"
# The wallet toward its agent when a customer scans a merchant's order code (Alipay+ userInitiatedPay).
SCAN_PATH = "/aps/api/v1/payments/userInitiatedPay"
# The customer's app toward the wallet backend: "scan order code", and "show a payment code".
APP_SCAN_PATH = "/app/v1/scanOrderCode"
APP_CODE_PATH = "/app/v1/paymentCode"
# A user-presented payment code is good for one payment, for this long after the app shows it.
CODE_TTL_S = 120
MAX_CODE_VALUE_CHARS = 512
MAX_ID_CHARS = 64
MAX_AMOUNT_DIGITS = 15
# The partner-records format `blindgate reconcile` reads (see blindgate.settlement.reconcile).
RECORD_COLUMNS = ("transactionId", "transactionType", "settlementCurrency", "settlementAmount", "status")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    customer_id TEXT PRIMARY KEY, payment_code TEXT UNIQUE NOT NULL, full_name TEXT NOT NULL,
    phone TEXT NOT NULL, email TEXT NOT NULL, national_id TEXT NOT NULL, device_id TEXT NOT NULL,
    ip TEXT NOT NULL, address TEXT NOT NULL, balance INTEGER NOT NULL CHECK (balance >= 0));
CREATE TABLE IF NOT EXISTS payments (
    payment_request_id TEXT PRIMARY KEY, payment_id TEXT UNIQUE, fingerprint TEXT NOT NULL,
    status TEXT NOT NULL, customer_id TEXT, debit INTEGER NOT NULL DEFAULT 0,
    order_currency TEXT, order_value INTEGER NOT NULL DEFAULT 0,
    refunded_debit INTEGER NOT NULL DEFAULT 0, refunded_order INTEGER NOT NULL DEFAULT 0,
    response TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, customer_id TEXT NOT NULL, expires_at REAL NOT NULL, used_by TEXT);
CREATE TABLE IF NOT EXISTS refunds (
    refund_request_id TEXT PRIMARY KEY, payment_request_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL, amount INTEGER NOT NULL, response TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Amount:
    currency: str
    value: int


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_ID_CHARS:
        raise Rejected("PARAM_ILLEGAL", f"{name} is missing or malformed")
    return value


def _amount(body: dict[str, Any], name: str) -> Amount | None:
    raw = body.get(name)
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise Rejected("PARAM_ILLEGAL", f"{name} is malformed")
    currency, value = raw.get("currency"), raw.get("value")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isupper()):
        raise Rejected("PARAM_ILLEGAL", f"{name}.currency is malformed")
    if not (
        isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= MAX_AMOUNT_DIGITS
    ):
        raise Rejected("PARAM_ILLEGAL", f"{name}.value is malformed")
    if int(value) <= 0:
        raise Rejected("PARAM_ILLEGAL", f"{name}.value must be positive")
    return Amount(currency, int(value))


def _wire(amount: Amount) -> dict[str, str]:
    return {"currency": amount.currency, "value": str(amount.value)}


def _payer(body: dict[str, Any]) -> tuple[str, str]:
    """Whom to debit: the payment code the user presented, or, for an order code the user
    scanned, the customerId the wallet's own agent names (it strips one the network sends)."""
    method = body.get("paymentMethod")
    code = method.get("paymentMethodId") if isinstance(method, dict) else None
    if code is None and body.get("customerId") is not None:
        return "customer_id", _text(body, "customerId")
    if not isinstance(code, str) or not 1 <= len(code) <= MAX_ID_CHARS:
        raise Rejected("PARAM_ILLEGAL", "paymentMethod.paymentMethodId is missing or malformed")
    return "payment_code", code


def _payment_key(body: dict[str, Any]) -> tuple[str, str]:
    """Which payment a cancel, refund or inquiry is about: by ``paymentRequestId``, else ``paymentId``."""
    if body.get("paymentRequestId") is not None:
        return "payment_request_id", _text(body, "paymentRequestId")
    return "payment_id", _text(body, "paymentId")


def _fingerprint(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _failure(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"result": result(code, "F", message), **extra}


class WalletBook:
    """The wallet's accounts and payments in one SQLite file; every method is one transaction.

    User-presented payment codes are one-time codes with a short validity, as real ones are
    (`issue_code`: the app shows one; a pay spends it). ``one_time_codes`` False accepts the
    account's static code as a payment code instead: for tests of the payment path that pay
    many times with one fixed code, never for the demo.
    """

    def __init__(self, path: Path | str, wallet_id: str, currency: str, one_time_codes: bool = True) -> None:
        self.wallet_id, self.currency, self.one_time_codes = wallet_id, currency, one_time_codes
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def create(cls, path: Path | str, wallet: Wallet, one_time_codes: bool = True) -> WalletBook:
        """Open the book at ``path``, opening accounts for the wallet's customers the first time."""
        book = cls(path, wallet.wallet_id, wallet.currency, one_time_codes)
        with book._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO accounts VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (c.customer_id, c.payment_code, c.full_name, c.phone, c.email, c.national_id,
                     c.device_id, c.ip, c.address, c.balance)
                    for c in wallet.customers
                ],
            )  # fmt: skip
        return book

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def balance(self, customer_id: str) -> int:
        row = self._db.execute(
            "SELECT balance FROM accounts WHERE customer_id = ?", (customer_id,)
        ).fetchone()
        if row is None:
            raise KeyError("no such customer")
        return int(row[0])

    def customer_with_code(self, payment_code: str) -> str | None:
        """The customer whose app shows ``payment_code`` (the reference wallet's app credential)."""
        row = self._db.execute(
            "SELECT customer_id FROM accounts WHERE payment_code = ?", (payment_code,)
        ).fetchone()
        return str(row[0]) if row is not None else None

    def issue_code(self, customer_id: str, prefix: str, digits: int) -> str:
        """A fresh one-time payment code for the customer, valid for `CODE_TTL_S`."""
        while True:
            code = prefix + "".join(secrets.choice("0123456789") for _ in range(digits - len(prefix)))
            with self._transaction() as db:
                taken = db.execute("SELECT 1 FROM codes WHERE code = ?", (code,)).fetchone()
                static = db.execute("SELECT 1 FROM accounts WHERE payment_code = ?", (code,)).fetchone()
                if taken is None and static is None:
                    db.execute(
                        "INSERT INTO codes (code, customer_id, expires_at) VALUES (?, ?, ?)",
                        (code, customer_id, time.time() + CODE_TTL_S),
                    )
                    return code

    def issued_codes(self) -> list[str]:
        """Every one-time code issued (personal values: the privacy check looks for them too)."""
        return [str(row[0]) for row in self._db.execute("SELECT code FROM codes")]

    def total_balance(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(balance), 0) FROM accounts").fetchone()[0])

    def records(self) -> list[tuple[str, str, str, int, str]]:
        """The wallet's own settlement records, one row per money movement it made.

        ``(transactionId, transactionType, currency, amount, status)`` in the columns
        `blindgate reconcile` reads: a debit it made is a PAYMENT (+debit) keyed by the
        gateway's paymentRequestId; a refund it gave back a REFUND (-amount) keyed by the
        refundRequestId; a cancel of a debited payment a CANCEL of what was left after refunds.
        """
        rows: list[tuple[str, str, str, int, str]] = []
        payments = self._db.execute(
            "SELECT p.payment_request_id, p.status, p.debit,"
            " (SELECT COALESCE(SUM(r.amount), 0) FROM refunds r"
            "  WHERE r.payment_request_id = p.payment_request_id)"
            " FROM payments p WHERE p.status IN ('SUCCESS', 'CANCELLED') ORDER BY 1"
        ).fetchall()
        for request_id, status, debit, refunded in payments:
            rows.append((request_id, "PAYMENT", self.currency, debit, "SUCCESS"))
            if status == "CANCELLED" and debit > refunded:
                rows.append((request_id, "CANCEL", self.currency, -(debit - refunded), "SUCCESS"))
        refunds = self._db.execute(
            "SELECT refund_request_id, amount FROM refunds WHERE amount > 0 ORDER BY 1"
        ).fetchall()
        rows.extend((refund_id, "REFUND", self.currency, -amount, "SUCCESS") for refund_id, amount in refunds)
        return rows

    def export_records(self, path: Path) -> int:
        """Write ``records()`` as CSV to ``path`` (the reconcile format); returns the row count."""
        rows = self.records()
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(RECORD_COLUMNS)
            writer.writerows(rows)
        return len(rows)

    # --- the four operations ------------------------------------------------------------------

    def pay(self, body: dict[str, Any]) -> dict[str, Any]:
        request_id = _text(body, "paymentRequestId")
        payer = _payer(body)
        order = _amount(body, "paymentAmount")
        if order is None:
            raise Rejected("PARAM_ILLEGAL", "paymentAmount is missing")
        debit = _amount(body, "payToAmount") or order
        fingerprint = _fingerprint(*payer, order, debit)
        with self._transaction() as db:
            row = db.execute(
                "SELECT fingerprint, status, response FROM payments WHERE payment_request_id = ?",
                (request_id,),
            ).fetchone()
            if row is not None:
                if row[1] == "CLOSED":
                    return _failure("ORDER_IS_CLOSED", "the payment was cancelled before it arrived")
                if row[0] != fingerprint:
                    return _failure("REPEAT_REQ_INCONSISTENT", "paymentRequestId reused with other fields")
                return dict(json.loads(row[2]))
            answer, status, customer_id = self._decide_pay(db, request_id, payer, order, debit)
            db.execute(
                "INSERT INTO payments (payment_request_id, payment_id, fingerprint, status, customer_id,"
                " debit, order_currency, order_value, response) VALUES (?,?,?,?,?,?,?,?,?)",
                (request_id, answer.get("paymentId"), fingerprint, status, customer_id,
                 debit.value if status == "SUCCESS" else 0, order.currency, order.value, json.dumps(answer)),
            )  # fmt: skip
            return answer

    def _decide_pay(
        self, db: sqlite3.Connection, request_id: str, payer: tuple[str, str], order: Amount, debit: Amount
    ) -> tuple[dict[str, Any], str, str | None]:
        if debit.currency != self.currency:
            return _failure("CURRENCY_NOT_SUPPORT", "the wallet debits its own currency only"), "FAIL", None
        column, key = payer  # payment_code (the user presented it) or customer_id (they scanned)
        if column == "payment_code" and self.one_time_codes:
            spent, refusal = self._spend_code(db, key, request_id)
            if spent is None:
                return _failure("INVALID_CODE", refusal), "FAIL", None
            column, key = "customer_id", spent
        account = db.execute(
            f"SELECT customer_id, balance FROM accounts WHERE {column} = ?", (key,)
        ).fetchone()
        if account is None:
            return _failure("INVALID_CODE", "the payment code is not valid"), "FAIL", None
        customer_id, balance = account
        if balance < debit.value:
            return _failure("USER_BALANCE_NOT_ENOUGH", "the balance is not enough"), "FAIL", None
        db.execute(
            "UPDATE accounts SET balance = balance - ? WHERE customer_id = ?", (debit.value, customer_id)
        )
        payment_id = f"{self.wallet_id}P{_fingerprint(request_id)[:24]}"
        answer = {
            "result": result(),
            "paymentRequestId": request_id,
            "paymentId": payment_id,
            "paymentTime": now_iso(),
            "customerId": customer_id,
            "paymentAmount": _wire(order),
            "payToAmount": _wire(debit),
        }
        return answer, "SUCCESS", customer_id

    @staticmethod
    def _spend_code(db: sqlite3.Connection, code: str, request_id: str) -> tuple[str | None, str]:
        """Spend a one-time code on this payment: (its customer, "") or (None, why it cannot be)."""
        row = db.execute(
            "SELECT customer_id, expires_at, used_by FROM codes WHERE code = ?", (code,)
        ).fetchone()
        if row is None:
            return None, "the payment code is not valid"
        if row[2] is not None and row[2] != request_id:
            return None, "the payment code was used already"
        if row[1] < time.time():
            return None, "the payment code has expired"
        db.execute("UPDATE codes SET used_by = ? WHERE code = ?", (request_id, code))
        return str(row[0]), ""

    def cancel(self, body: dict[str, Any]) -> dict[str, Any]:
        column, key = _payment_key(body)
        with self._transaction() as db:
            row = db.execute(
                "SELECT status, customer_id, debit, refunded_debit, payment_id, payment_request_id"
                f" FROM payments WHERE {column} = ?",
                (key,),
            ).fetchone()
            if row is None and column == "payment_id":
                return _failure("ORDER_NOT_EXIST", "no payment with this paymentId")
            request_id = key if row is None else row[5]
            if row is None:
                db.execute(
                    "INSERT INTO payments (payment_request_id, fingerprint, status, response)"
                    " VALUES (?, '', 'CLOSED', '{}')",
                    (request_id,),
                )
            elif row[0] == "SUCCESS":
                db.execute(
                    "UPDATE accounts SET balance = balance + ? WHERE customer_id = ?",
                    (row[2] - row[3], row[1]),
                )
                db.execute(
                    "UPDATE payments SET status = 'CANCELLED', refunded_debit = debit"
                    " WHERE payment_request_id = ?",
                    (request_id,),
                )
            answer: dict[str, Any] = {
                "result": result(),
                "paymentRequestId": request_id,
                "cancelTime": now_iso(),
            }
            if row is not None and row[4]:
                answer["paymentId"] = row[4]
            return answer

    def refund(self, body: dict[str, Any]) -> dict[str, Any]:
        refund_id = _text(body, "refundRequestId")
        request_id = self._request_id(*_payment_key(body))
        amount = _amount(body, "refundAmount")
        if amount is None:
            raise Rejected("PARAM_ILLEGAL", "refundAmount is missing")
        fingerprint = _fingerprint(request_id, amount)
        with self._transaction() as db:
            row = db.execute(
                "SELECT fingerprint, response FROM refunds WHERE refund_request_id = ?", (refund_id,)
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    return _failure("REPEAT_REQ_INCONSISTENT", "refundRequestId reused with other fields")
                return dict(json.loads(row[1]))
            answer, given_back = self._decide_refund(db, refund_id, request_id, amount)
            db.execute(
                "INSERT INTO refunds VALUES (?,?,?,?,?)",
                (refund_id, request_id, fingerprint, given_back, json.dumps(answer)),
            )
            return answer

    def _decide_refund(
        self, db: sqlite3.Connection, refund_id: str, request_id: str, amount: Amount
    ) -> tuple[dict[str, Any], int]:
        payment = db.execute(
            "SELECT status, customer_id, debit, order_currency, order_value, refunded_debit, refunded_order"
            " FROM payments WHERE payment_request_id = ?",
            (request_id,),
        ).fetchone()
        if payment is None or payment[0] in {"FAIL", "CLOSED"}:
            return _failure("ORDER_NOT_EXIST", "no successful payment with this paymentRequestId"), 0
        status, customer_id, debit, order_currency, order_value, refunded_debit, refunded_order = payment
        if status != "SUCCESS":
            return _failure("ORDER_IS_CLOSED", "the payment was cancelled"), 0
        if amount.currency == self.currency:
            give_back, order_part = amount.value, 0
            if refunded_debit + give_back > debit:
                return _failure("REFUND_AMOUNT_EXCEED", "the refunds exceed the payment"), 0
        elif amount.currency == order_currency:
            if refunded_order + amount.value > order_value:
                return _failure("REFUND_AMOUNT_EXCEED", "the refunds exceed the payment"), 0
            order_part = amount.value
            completes = refunded_order + amount.value == order_value
            give_back = debit - refunded_debit if completes else amount.value * debit // order_value
        else:
            return _failure(
                "CURRENCY_NOT_SUPPORT", "refund currency is neither the wallet's nor the order's"
            ), 0
        db.execute(
            "UPDATE accounts SET balance = balance + ? WHERE customer_id = ?", (give_back, customer_id)
        )
        db.execute(
            "UPDATE payments SET refunded_debit = refunded_debit + ?, refunded_order = refunded_order + ?"
            " WHERE payment_request_id = ?",
            (give_back, order_part, request_id),
        )
        answer = {
            "result": result(),
            "refundRequestId": refund_id,
            "refundId": f"{self.wallet_id}R{_fingerprint(refund_id)[:24]}",
            "refundTime": now_iso(),
            "refundAmount": _wire(amount),
            "refundPayToAmount": _wire(Amount(self.currency, give_back)) if give_back else None,
        }
        return {k: v for k, v in answer.items() if v is not None}, give_back

    def _request_id(self, column: str, key: str) -> str:
        """The paymentRequestId of a payment named either way (unknown paymentIds stay as given)."""
        if column == "payment_request_id":
            return key
        row = self._db.execute(
            "SELECT payment_request_id FROM payments WHERE payment_id = ?", (key,)
        ).fetchone()
        return str(row[0]) if row is not None else f"unknown:{key}"

    def inquiry(self, body: dict[str, Any]) -> dict[str, Any]:
        request_id = self._request_id(*_payment_key(body))
        row = self._db.execute(
            "SELECT status, response FROM payments WHERE payment_request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return {"result": result(), "paymentResult": result("ORDER_NOT_EXIST", "F", "no such payment")}
        if row[0] in {"CLOSED", "CANCELLED"}:
            stored = json.loads(row[1]) if row[1] != "{}" else {}
            stored.pop("result", None)
            return {
                "result": result(),
                "paymentResult": result("ORDER_IS_CLOSED", "F", "cancelled"),
                **stored,
            }
        stored = json.loads(row[1])
        payment_result = stored.pop("result")
        return {"result": result(), "paymentResult": payment_result, **stored}


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind is not None else "COMMIT")


@dataclass(frozen=True)
class SlowAnswers:
    """Fault injection: answer a share of ``pay`` requests late (the debit itself is not delayed).

    Which requests is decided by a hash of the ``paymentRequestId``, so a run is repeatable
    and a retry of a slow request is slow again. A caller that gives up before ``seconds``
    sees no answer and must learn the outcome by inquiry or cancel: the AMS "U" path.
    """

    share: float = 0.0
    seconds: float = 0.0

    def applies_to(self, request_id: object) -> bool:
        if self.share <= 0 or not isinstance(request_id, str):
            return False
        draw = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big") / 2**64
        return draw < self.share


class OrderCodeScanner:
    """The wallet backend's "scan order code" action: userInitiatedPay toward its agent.

    Signed RSA256 with the backend's key (the integration it has with Alipay+); the agent's
    answer must verify with the agent's RSA key. The agent claims the code for this customer,
    calls the backend's own pay to debit, and answers with the outcome.
    """

    def __init__(
        self,
        agent_url: str,
        keys: PartnerKeys,
        transport: httpx.AsyncBaseTransport | None = None,
        agent_cert: str | None = None,
    ) -> None:
        """``agent_cert``: the agent's TLS certificate (PEM), trusted alone when given."""
        self.agent_url, self.keys = agent_url.rstrip("/"), keys
        verify = ssl.create_default_context(cadata=agent_cert) if agent_cert else True
        self._client = httpx.AsyncClient(transport=transport, verify=verify)

    async def scan(self, customer_id: str, code_value: str, timeout_s: float = 30.0) -> dict[str, Any]:
        body = json.dumps({"codeValue": code_value, "customerId": customer_id}, separators=(",", ":"))
        headers = signed_request_headers(SCAN_PATH, body, self.keys)
        try:
            response = await self._client.post(
                self.agent_url + SCAN_PATH, content=body, headers=headers, timeout=timeout_s
            )
            verify_message(
                self.keys.peer_public_key,
                response.headers.get("signature"),
                "POST",
                SCAN_PATH,
                response.headers.get("client-id") or "",
                response.headers.get("response-time") or "",
                response.content,
            )
            answer = json.loads(response.content)
        except (httpx.HTTPError, InvalidSignature, ValueError) as exc:
            log.warning("order-code scan got no verified answer: %s", type(exc).__name__)
            return {"result": result("UNKNOWN_EXCEPTION", "U", "no answer; look the payment up")}
        return dict(answer) if isinstance(answer, dict) else {"result": result("UNKNOWN_EXCEPTION", "U", "?")}

    async def aclose(self) -> None:
        await self._client.aclose()


class WalletAppFailed(Exception):
    """The wallet backend gave the app no answer (connection, timeout, not JSON)."""


class WalletApp:
    """A customer's wallet app: "show a payment code" and "scan order code" at its wallet backend
    (thread-safe, blocking).

    The reference wallet has no login: the app proves its customer by the account's static code
    (``credential``), which is never a payment code itself.
    """

    def __init__(self, backend_url: str, timeout_s: float = 30.0, pinned: Path | None = None) -> None:
        """``pinned``: the backend's TLS certificate, trusted alone (an https ``backend_url``)."""
        self._url = backend_url.rstrip("/") + APP_SCAN_PATH
        self._code_url = backend_url.rstrip("/") + APP_CODE_PATH
        verify = ssl.create_default_context(cafile=pinned) if pinned else True
        self._client = httpx.Client(timeout=timeout_s, verify=verify)

    def _post_code(self, credential: str) -> Any:
        try:
            return self._client.post(self._code_url, json={"paymentCode": credential}).json()
        except httpx.RemoteProtocolError:
            # A kept-alive connection the backend closed as idle (its keep-alive timeout) just as
            # this request went out: nothing was issued; ask once more on a new connection. A
            # repeat is harmless anyway: each ask issues a fresh code, an unused one expires.
            return self._client.post(self._code_url, json={"paymentCode": credential}).json()

    def payment_code(self, credential: str) -> str:
        """A fresh one-time payment code to show the merchant."""
        try:
            answer = self._post_code(credential)
        except (httpx.HTTPError, ValueError) as exc:
            raise WalletAppFailed(type(exc).__name__) from None
        code = answer.get("paymentCode") if isinstance(answer, dict) else None
        if not isinstance(code, str):
            raise WalletAppFailed("no payment code")
        return code

    def scan(self, payment_code: str, code_value: str) -> dict[str, Any]:
        try:
            response = self._client.post(
                self._url, json={"paymentCode": payment_code, "codeValue": code_value}
            )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise WalletAppFailed(type(exc).__name__) from None
        if not isinstance(answer, dict):
            raise WalletAppFailed("answer is not a JSON object")
        return answer

    def close(self) -> None:
        self._client.close()


def create_wallet_app(
    book: WalletBook,
    keys: PartnerKeys,
    slow: SlowAnswers | None = None,
    scanner: OrderCodeScanner | None = None,
    code_prefix: str = "",
) -> Starlette:
    """The wallet backend as an ASGI app: the four Alipay+ wallet-side endpoints and ``/health``;
    with a ``scanner``, also its app's "scan order code" (`APP_SCAN_PATH`); with a
    ``code_prefix``, its app's "show a payment code" (`APP_CODE_PATH`)."""
    operations: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        PAY_PATH: book.pay,
        CANCEL_PATH: book.cancel,
        REFUND_PATH: book.refund,
        INQUIRY_PATH: book.inquiry,
    }

    async def endpoint(request: Request) -> Response:
        path = request.url.path
        try:
            body = await read_signed_json(request, keys)
            payload = operations[path](body)
            if slow is not None and path == PAY_PATH and slow.applies_to(body.get("paymentRequestId")):
                await asyncio.sleep(slow.seconds)
        except Rejected as rejected:
            payload = _failure(rejected.code, rejected.message)
        except Exception as exc:  # never a stack trace to the caller; the class name only in the log
            log.error("wallet %s failed: %s", path, type(exc).__name__)
            payload = {"result": result("UNKNOWN_EXCEPTION", "U", "internal error")}
        return await signed_json_response(request, payload, keys)

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "wallet": book.wallet_id})

    async def scan(request: Request) -> Response:
        """The customer's app scanned a merchant's code. The reference wallet has no login: the app
        proves the customer by the payment code it shows, which already lets a merchant debit them."""
        try:
            body = await _app_json(request)
            customer_id = book.customer_with_code(_text(body, "paymentCode"))
            code_value = body.get("codeValue")
            if not isinstance(code_value, str) or not 1 <= len(code_value) <= MAX_CODE_VALUE_CHARS:
                raise Rejected("PARAM_ILLEGAL", "codeValue is missing or malformed")
            if customer_id is None:
                raise Rejected("INVALID_CODE", "no customer shows this payment code")
            assert scanner is not None
            payload = await scanner.scan(customer_id, code_value)
        except Rejected as rejected:
            payload = _failure(rejected.code, rejected.message)
        return JSONResponse(payload)

    async def show_code(request: Request) -> Response:
        """The customer's app shows a payment code: a fresh one-time code for its customer."""
        try:
            customer_id = book.customer_with_code(_text(await _app_json(request), "paymentCode"))
            if customer_id is None:
                raise Rejected("INVALID_CODE", "no customer has this credential")
            code = book.issue_code(customer_id, code_prefix, PAYMENT_CODE_DIGITS)
            return JSONResponse({"result": result(), "paymentCode": code})
        except Rejected as rejected:
            return JSONResponse(_failure(rejected.code, rejected.message))

    routes = [Route(path, endpoint, methods=["POST"]) for path in operations]
    routes.append(Route("/health", health, methods=["GET"]))
    if code_prefix:
        routes.append(Route(APP_CODE_PATH, show_code, methods=["POST"]))
    if scanner is not None:
        routes.append(Route(APP_SCAN_PATH, scan, methods=["POST"]))
    return Starlette(routes=routes)


async def _app_json(request: Request) -> dict[str, Any]:
    body = await request.body()
    if len(body) > 4096:
        raise Rejected("PARAM_ILLEGAL", "request body is too large")
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Rejected("PARAM_ILLEGAL", "body is not JSON") from None
    if not isinstance(parsed, dict):
        raise Rejected("PARAM_ILLEGAL", "body is not a JSON object")
    return parsed
