"""Request models of the AMS acquirer-side API, validated: what the gateway and agents accept.

Parsing is strict and bounded: a body is at most `MAX_BODY_BYTES`, JSON objects only, each
id at most `MAX_ID_CHARS` of printable ASCII, amounts as in `blindgate.api.amounts`. Anything
else raises `ApiError` PARAM_ILLEGAL naming the field (never echoing its value).

The sealed fields of a request (see `blindgate.agent.policy`) are envelopes in the place of
the values they replace; these models only carry them, they never open them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blindgate.api.amounts import Money, parse_money
from blindgate.api.results import ApiError

MAX_BODY_BYTES = 64 * 1024
MAX_ID_CHARS = 64
MAX_URL_CHARS = 1024
MAX_DEPTH = 8

PAY_PATH = "/ams/api/v1/payments/pay"
INQUIRY_PATH = "/ams/api/v1/payments/inquiryPayment"
CANCEL_PATH = "/ams/api/v1/payments/cancel"
REFUND_PATH = "/ams/api/v1/payments/refund"
INQUIRY_REFUND_PATH = "/ams/api/v1/payments/inquiryRefund"
ACQUIRER_PATHS = (PAY_PATH, INQUIRY_PATH, CANCEL_PATH, REFUND_PATH, INQUIRY_REFUND_PATH)

WALLET_PAY_PATH = "/aps/api/v1/payments/pay"
WALLET_CANCEL_PATH = "/aps/api/v1/payments/cancelPayment"
WALLET_REFUND_PATH = "/aps/api/v1/payments/refund"
WALLET_INQUIRY_PATH = "/aps/api/v1/payments/inquiryPayment"
WALLET_PATHS = (WALLET_PAY_PATH, WALLET_CANCEL_PATH, WALLET_REFUND_PATH, WALLET_INQUIRY_PATH)

# Where the gateway notifies an acquirer's agent of a payment's outcome.
NOTIFY_AGENT_PATH = "/blindgate/v1/notifyPayment"

# The merchant-presented order code (`blindgate.gateway.order_codes`). A wallet whose customer
# scanned a code calls userInitiatedPay (its backend toward its agent with the customerId, its
# agent toward the gateway with the customer's pseudonym), then its agent reports the wallet's
# pay answer on ORDER_CODE_RESULT_PATH.
ORDER_CODE_SCENARIO = "OrderCode"
ORDER_CODE_SCAN_PATH = "/aps/api/v1/payments/userInitiatedPay"
ORDER_CODE_RESULT_PATH = "/blindgate/v1/orderCodes/payResult"
MAX_CODE_VALUE_CHARS = 512  # as Alipay+ allows for a codeValue

# Set by the acquirer's agent from the payment code's prefix: which wallet the payer uses.
ROUTING_FIELD = "customerBelongsTo"


def parse_json_object(body: bytes) -> dict[str, Any]:
    """A request body as a JSON object; raises `ApiError` PARAM_ILLEGAL otherwise: not JSON, not
    an object, nested deeper than `MAX_DEPTH`, a number outside 64 bits (or NaN, Infinity, or
    past Python's digit limit), or text that is not Unicode (a lone UTF-16 surrogate)."""
    if len(body) > MAX_BODY_BYTES:
        raise ApiError("PARAM_ILLEGAL", "the request body is too large")
    try:
        parsed = json.loads(body, parse_constant=_refuse_constant, parse_int=_int64)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, a 5,000-digit number
        raise ApiError("PARAM_ILLEGAL", "the request body is not JSON") from None
    if not isinstance(parsed, dict):
        raise ApiError("PARAM_ILLEGAL", "the request body is not a JSON object")
    if _depth(parsed) > MAX_DEPTH:
        raise ApiError("PARAM_ILLEGAL", "the request body is nested too deeply")
    # Only a body with a \\u escape can hold a lone surrogate (raw UTF-8 cannot: decoding
    # refuses it), so only such a body is walked: every request is parsed here.
    problem = _problem(parsed, 0) if b"\\u" in body else None
    if problem is not None:
        raise ApiError("PARAM_ILLEGAL", problem)
    return parsed


def _int64(text: str) -> int:
    """A JSON integer, refused outside 64 bits (json.loads calls this for integer literals only)."""
    value = int(text)
    if not -INT64 <= value < INT64:
        raise ValueError("a number in the request body is out of range")
    return value


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


INT64 = 2**63


def _refuse_constant(name: str) -> None:
    raise ValueError("NaN and Infinity are not JSON numbers")


def _problem(value: Any, depth: int) -> str | None:
    """Why a parsed JSON value cannot be processed, or None."""
    if depth > MAX_DEPTH:
        return "the request body is nested too deeply"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "the request body holds text that is not Unicode"
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        return "a number in the request body is out of range"
    if isinstance(value, dict):
        children: Any = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return None
    for key, item in children:
        found = _problem(key, depth) if isinstance(key, str) else None
        found = found or _problem(item, depth + 1)
        if found is not None:
            return found
    return None


def text(body: dict[str, Any], name: str, max_chars: int = MAX_ID_CHARS, required: bool = True) -> str | None:
    """A string field of printable ASCII, 1..max_chars; None when absent and not required."""
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
        raise ApiError("PARAM_ILLEGAL", f"{name} is missing, not a string or too long")
    if not (value.isascii() and value.isprintable()):
        raise ApiError("PARAM_ILLEGAL", f"{name} has characters outside printable ASCII")
    return value


def required_text(body: dict[str, Any], name: str, max_chars: int = MAX_ID_CHARS) -> str:
    value = text(body, name, max_chars)
    assert value is not None
    return value


def obj(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise ApiError("PARAM_ILLEGAL", f"{name} is missing or not an object")
    return value


@dataclass(frozen=True)
class PayRequest:
    """``payments/pay`` as the gateway sees it: routing data in clear, payer data sealed."""

    payment_request_id: str
    amount: Money
    product_code: str
    payment_method_type: str
    wallet_id: str
    notify_url: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> PayRequest:
        method = obj(body, "paymentMethod")
        return cls(
            payment_request_id=required_text(body, "paymentRequestId"),
            amount=parse_money(body.get("paymentAmount"), "paymentAmount"),
            product_code=required_text(body, "productCode"),
            payment_method_type=required_text(method, "paymentMethodType"),
            wallet_id=required_text(method, ROUTING_FIELD),
            notify_url=text(body, "paymentNotifyUrl", MAX_URL_CHARS, required=False),
        )


def check_currencies(body: dict[str, Any], acquirer_currency: str) -> None:
    """Refuse a pay request whose amounts disagree on the currency; store nothing.

    AMS (Alipay+ ``pay``, ACQP to Alipay+): ``paymentAmount`` is the amount the acquirer asks
    to receive, in the currency it created the order in; Antom's ``pay`` says the same ("in the
    order currency"). Its value may differ from ``order.orderAmount`` (a merchant's discount),
    its currency may not. An acquirer here is settled in the one currency the network file
    gives it, so a payment in another currency would post to books it has no account for.

    - ``order.orderAmount`` (optional) in another currency than ``paymentAmount``: PARAM_ILLEGAL.
    - ``paymentAmount`` in another currency than the acquirer's: CURRENCY_NOT_SUPPORT.
    """
    amount = parse_money(body.get("paymentAmount"), "paymentAmount")
    order = body.get("order")
    declared = order.get("orderAmount") if isinstance(order, dict) else None
    if declared is not None:
        order_amount = parse_money(declared, "order.orderAmount")
        if order_amount.currency != amount.currency:
            raise ApiError("PARAM_ILLEGAL", "paymentAmount and order.orderAmount are in different currencies")
    if amount.currency != acquirer_currency:
        raise ApiError("CURRENCY_NOT_SUPPORT", "paymentAmount is not in the acquirer's currency")


def in_store_scenario(body: dict[str, Any]) -> str | None:
    """``paymentFactor.inStorePaymentScenario`` of a pay request, when it names one."""
    factor = body.get("paymentFactor")
    scenario = factor.get("inStorePaymentScenario") if isinstance(factor, dict) else None
    return scenario if isinstance(scenario, str) else None


@dataclass(frozen=True)
class OrderCodeRequest:
    """``payments/pay`` with ``inStorePaymentScenario=OrderCode``: no payer is known yet.

    ``expiry_time`` is ``paymentExpiryTime`` as sent (ISO 8601 with a zone), when sent.
    """

    payment_request_id: str
    amount: Money
    product_code: str
    payment_method_type: str
    notify_url: str | None
    expiry_time: datetime | None
    order: dict[str, Any]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> OrderCodeRequest:
        method = obj(body, "paymentMethod")
        if method.get("paymentMethodId") is not None or method.get(ROUTING_FIELD) is not None:
            raise ApiError(
                "PARAM_ILLEGAL", "an order-code payment names no payer: paymentMethodId is not set"
            )
        return cls(
            payment_request_id=required_text(body, "paymentRequestId"),
            amount=parse_money(body.get("paymentAmount"), "paymentAmount"),
            product_code=required_text(body, "productCode"),
            payment_method_type=required_text(method, "paymentMethodType"),
            notify_url=text(body, "paymentNotifyUrl", MAX_URL_CHARS, required=False),
            expiry_time=_moment(body, "paymentExpiryTime"),
            order=obj(body, "order"),
        )


@dataclass(frozen=True)
class ScanRequest:
    """userInitiatedPay as the gateway takes it from a wallet's agent: the code and the payer's pseudonym."""

    code_value: str
    pseudonym: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> ScanRequest:
        return cls(
            code_value=required_text(body, "codeValue", MAX_CODE_VALUE_CHARS),
            pseudonym=required_text(body, "customerPseudonym", 80),
        )


def _moment(body: dict[str, Any], name: str) -> datetime | None:
    """An optional ISO 8601 date-time with a zone; PARAM_ILLEGAL (naming the field) otherwise."""
    raw = text(body, name, 40, required=False)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError("PARAM_ILLEGAL", f"{name} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise ApiError("PARAM_ILLEGAL", f"{name} has no time zone")
    return moment


@dataclass(frozen=True)
class PaymentRef:
    """Which payment an inquiry or cancel names: ``paymentRequestId`` (or ``paymentId``)."""

    payment_request_id: str | None
    payment_id: str | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> PaymentRef:
        request_id = text(body, "paymentRequestId", required=False)
        payment_id = text(body, "paymentId", required=False)
        if request_id is None and payment_id is None:
            raise ApiError("PARAM_ILLEGAL", "paymentRequestId or paymentId is required")
        return cls(request_id, payment_id)


@dataclass(frozen=True)
class RefundRequest:
    refund_request_id: str
    payment_id: str
    amount: Money

    @classmethod
    def parse(cls, body: dict[str, Any]) -> RefundRequest:
        return cls(
            refund_request_id=required_text(body, "refundRequestId"),
            payment_id=required_text(body, "paymentId"),
            amount=parse_money(body.get("refundAmount"), "refundAmount"),
        )


@dataclass(frozen=True)
class RefundRef:
    refund_request_id: str

    @classmethod
    def parse(cls, body: dict[str, Any]) -> RefundRef:
        return cls(required_text(body, "refundRequestId"))
