"""Money on the wire: ISO 4217 minor units and the AMS ``{"currency", "value"}`` amount shape.

An amount is an ``int`` of minor units of its currency (JPY 0 decimals, USD 2, KWD 3); the
AMS API carries it as ``{"currency": "USD", "value": "1000"}`` (a decimal string of minor
units, never a float). Conversion between currencies is NOT done here: the gateway converts
with the ledger's rule (`blindgate.ledger.money.convert`: exact Decimal, round half
up to a whole minor unit of the target currency), so the wallet debits exactly what the
ledger books.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from blindgate.api.results import ApiError

# ISO 4217 exponents of the currencies the network carries (the ledger keeps the same table).
EXPONENTS: dict[str, int] = {
    "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "EUR": 2, "GBP": 2, "HKD": 2,
    "IDR": 2, "INR": 2, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MYR": 2, "NZD": 2, "OMR": 3,
    "PHP": 2, "SGD": 2, "THB": 2, "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip

# 15 digits keep every amount exact in an int64 and in a JSON double, should a peer parse one.
MAX_VALUE_DIGITS = 15


@dataclass(frozen=True, order=True)
class Money:
    """A positive amount in minor units of ``currency``."""

    currency: str
    value: int

    def __post_init__(self) -> None:
        assert self.currency in EXPONENTS, "unknown currency"
        assert isinstance(self.value, int) and not isinstance(self.value, bool) and self.value > 0

    def to_wire(self) -> dict[str, str]:
        return {"currency": self.currency, "value": str(self.value)}


def exponent(currency: str) -> int:
    """ISO 4217 minor-unit exponent; raises `ApiError` (CURRENCY_NOT_SUPPORT) when unknown."""
    if currency not in EXPONENTS:
        raise ApiError("CURRENCY_NOT_SUPPORT", "the currency is not supported")
    return EXPONENTS[currency]


def parse_money(raw: Any, name: str) -> Money:
    """Parse an AMS amount object; raises `ApiError` PARAM_ILLEGAL (the field's name, never its value)."""
    if not isinstance(raw, dict):
        raise ApiError("PARAM_ILLEGAL", f"{name} is missing or not an amount object")
    currency, value = raw.get("currency"), raw.get("value")
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isupper()):
        raise ApiError("PARAM_ILLEGAL", f"{name}.currency is missing or malformed")
    exponent(currency)
    if not (
        isinstance(value, str) and value.isascii() and value.isdigit() and 1 <= len(value) <= MAX_VALUE_DIGITS
    ):
        raise ApiError("PARAM_ILLEGAL", f"{name}.value must be a string of digits (minor units)")
    if int(value) <= 0:
        raise ApiError("PARAM_ILLEGAL", f"{name}.value must be positive")
    return Money(currency, int(value))
