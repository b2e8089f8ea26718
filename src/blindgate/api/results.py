"""AMS result codes: each code's ``resultStatus`` (S success, F failed, U unknown) and message.

Every answer of the API carries ``result {resultCode, resultStatus, resultMessage}``. Business
errors and bad input are HTTP 200 with status F (the official SDK raises on any other HTTP
status, and could not read the code); U means "not known yet": ask again by inquiry.
Messages are fixed strings or name a field: they never carry a value someone sent.
"""

from __future__ import annotations

from typing import Final

from blindgate.api.errors import ContractError

SUCCESS: Final = "SUCCESS"

# code -> (resultStatus, default message)
RESULTS: Final[dict[str, tuple[str, str]]] = {
    "SUCCESS": ("S", "success"),
    "ACCEPT": ("U", "accepted; the outcome follows"),
    "PAYMENT_IN_PROCESS": ("U", "payment in process"),
    "REQUEST_TRAFFIC_EXCEED_LIMIT": ("U", "request traffic exceeds the limit"),
    "UNKNOWN_EXCEPTION": ("U", "the outcome is not known; inquire later"),
    "PARAM_ILLEGAL": ("F", "illegal parameters"),
    "INVALID_SIGNATURE": ("F", "the signature is invalid"),
    "KEY_NOT_FOUND": ("F", "the key is not found"),
    "INVALID_CLIENT": ("F", "the client is invalid"),
    "INVALID_CODE": ("F", "the payment code is not valid"),
    "REPEAT_REQ_INCONSISTENT": ("F", "the request repeats an earlier one with other fields"),
    "USER_BALANCE_NOT_ENOUGH": ("F", "the user's balance is not enough"),
    "ORDER_IS_CLOSED": ("F", "the order is closed"),
    "ORDER_NOT_EXIST": ("F", "the order does not exist"),
    "ORDER_STATUS_INVALID": ("F", "the order's status does not allow this"),
    "REFUND_AMOUNT_EXCEED": ("F", "the refunds exceed the paid amount"),
    "REFUND_WINDOW_EXCEED": ("F", "the refund window has closed"),
    "CURRENCY_NOT_SUPPORT": ("F", "the currency is not supported"),
    "PARTNER_NOT_EXIST": ("F", "no wallet or partner for this request"),
    "RISK_REJECT": ("F", "the request was rejected by risk control"),
    "USER_AMOUNT_EXCEED_LIMIT": ("F", "the amount exceeds the user's limit"),
    "PAYMENT_AMOUNT_EXCEED_LIMIT": ("F", "the amount exceeds the payment limit"),
    "FX_QUOTE_EXPIRED": ("F", "the FX quote has expired"),
    "SYSTEM_ERROR": ("F", "system error"),
}


def result(code: str, message: str | None = None) -> dict[str, str]:
    """The ``result`` object for ``code``; unknown codes are a programming error."""
    status, default = RESULTS[code]
    return {"resultCode": code, "resultStatus": status, "resultMessage": message or default}


def status_of(code: str) -> str:
    return RESULTS[code][0]


class ApiError(ContractError):
    """A request answered with an AMS error result instead of being processed. Stores nothing."""

    def __init__(self, code: str, message: str | None = None) -> None:
        assert code in RESULTS, code
        super().__init__(message or RESULTS[code][1])
        self.code = code
        self.message = message or RESULTS[code][1]

    def body(self) -> dict[str, dict[str, str]]:
        return {"result": result(self.code, self.message)}
