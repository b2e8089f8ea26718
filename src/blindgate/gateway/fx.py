"""FX quotes from a local rate file: id, rate, expiry, locked on the payment.

The rate file (`rates.json` shipped in this package, or the network file's ``rates``) gives
mid rates against one base: ``{"base": "USD", "rates": {"SGD": "1.35", ...}}`` — units of
each currency per one base unit, as decimal strings. A quote from A to W is
``rate(W) / rate(A)`` rounded to 10 significant digits (half up): units of W per unit of A,
the form the ledger's `convert` takes. Conversion of an amount is the ledger's rule
(exact Decimal, round half up to a whole minor unit), so the wallet debits exactly what
the ledger books. No spread is applied: fees live in the ledger's fee schedule.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from importlib import resources
from pathlib import Path

from blindgate.api.amounts import EXPONENTS, Money
from blindgate.api.results import ApiError
from blindgate.gateway.errors import GatewayConfigError
from blindgate.ledger.money import convert

_QUOTE_CONTEXT = Context(prec=10, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Quote:
    quote_id: str
    source: str
    target: str
    rate: Decimal  # units of target per one unit of source
    expires_at: datetime

    def convert(self, amount: Money) -> Money:
        assert amount.currency == self.source
        return Money(self.target, convert(amount.value, self.source, self.target, self.rate))


class RateBook:
    def __init__(self, base: str, rates: dict[str, Decimal]) -> None:
        assert base in rates and rates[base] == 1, "the base currency's own rate is 1"
        self.base, self.rates = base, rates

    @classmethod
    def load(cls, path: Path | None = None) -> RateBook:
        text = (
            Path(path).read_text()
            if path is not None
            else resources.files("blindgate.gateway").joinpath("rates.json").read_text()
        )
        data = json.loads(text)
        rates = {code: Decimal(value) for code, value in data["rates"].items()}
        for code, rate in rates.items():
            if code not in EXPONENTS or not rate.is_finite() or rate <= 0:
                raise GatewayConfigError("the rate file holds an unknown currency or a non-positive rate")
        return cls(data["base"], rates)

    def quote(self, source: str, target: str, now: datetime, ttl_s: int) -> Quote:
        """A fresh quote; raises `ApiError` CURRENCY_NOT_SUPPORT when a rate is missing."""
        if source not in self.rates or target not in self.rates:
            raise ApiError("CURRENCY_NOT_SUPPORT", "no FX rate for this currency pair")
        rate = (
            Decimal(1) if source == target else _QUOTE_CONTEXT.divide(self.rates[target], self.rates[source])
        )
        # Whole seconds, as the store keeps it (`storage.schema.WholeSeconds`): the expiry the
        # wallet is told, the one checked, and the one stored are the same moment.
        expires_at = (now + timedelta(seconds=ttl_s)).replace(microsecond=0)
        return Quote(f"Q{secrets.token_hex(12)}", source, target, rate, expires_at)
