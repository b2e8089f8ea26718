"""Exact money arithmetic for the ledger: minor units, FX with a locked quote, fees.

Every amount is an ``int`` of minor units of its ISO 4217 currency. Three things need
arithmetic that can leave whole minor units: converting with the payment's locked FX
quote, and the two fees. They all follow ONE rounding rule, stated here and in
``docs/ledger.md``:

    exact ``Decimal`` arithmetic, then round half up (0.5 goes away from zero) to a
    whole minor unit of the target currency; amounts are non-negative when rounded.

Partial refunds never accumulate rounding drift: a refund's share of the converted
amount and of each fee is computed *cumulatively* (``proportional_share``): the total
refunded so far is rounded once, and this refund takes the difference from what earlier
refunds took. A payment refunded in full therefore gives back exactly what it took.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from blindgate.api.amounts import EXPONENTS
from blindgate.ledger.errors import InvalidAmount

# 60 significant digits: products of int64 amounts and quoted rates are exact; a quotient
# (a partial refund's share) that does not terminate is still far from any .5 tie at this depth.
_CONTEXT = decimal.Context(
    prec=60, rounding=ROUND_HALF_UP, traps=[decimal.InvalidOperation, decimal.Overflow]
)


def exponent(currency: str) -> int:
    """Minor-unit exponent of ``currency`` (JPY 0, USD 2, KWD 3)."""
    try:
        return EXPONENTS[currency]  # one ISO 4217 table for the wire and the ledger
    except KeyError:
        raise InvalidAmount(f"unknown currency {currency!r}") from None


def check_minor_units(value: object, currency: str, *, allow_zero: bool = False) -> int:
    """``value`` as a validated amount: an int (not a bool), positive (or zero if allowed)."""
    exponent(currency)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidAmount("an amount must be an integer number of minor units")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidAmount("an amount must be positive")
    return value


def round_minor(exact: Decimal) -> int:
    """The rounding rule: half up, to a whole minor unit."""
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=_CONTEXT))


def convert(value: int, source: str, target: str, rate: Decimal | int) -> int:
    """``value`` minor units of ``source`` in minor units of ``target`` at ``rate``.

    ``rate`` is units of ``target`` per one unit of ``source`` (e.g. 7.1234 CNY per USD), a
    ``Decimal`` as quoted (never a float, which cannot hold most quotes exactly).
    """
    if isinstance(rate, int) and not isinstance(rate, bool):
        rate = Decimal(rate)
    if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
        raise InvalidAmount("an FX rate must be a positive number")
    shift = exponent(target) - exponent(source)
    exact = _CONTEXT.multiply(Decimal(value), rate).scaleb(shift, context=_CONTEXT)
    return round_minor(exact)


def fee(value: int, rate: Decimal) -> int:
    """A fee of ``rate`` (a fraction, 0.025 = 2.5%) on ``value`` minor units, same currency."""
    if not rate.is_finite() or not 0 <= rate < 1:
        raise InvalidAmount("a fee rate must be in [0, 1)")
    return round_minor(_CONTEXT.multiply(Decimal(value), rate))


def proportional_share(total: int, part_so_far: int, part_after: int, whole: int) -> int:
    """This event's share of ``total`` when the cumulative part grows from ``part_so_far`` to ``part_after``.

    Each cumulative figure is rounded once (half up) from ``total * part / whole``; the
    difference is this event's share. When ``part_after == whole`` the shares sum to ``total``.
    """
    if not 0 <= part_so_far <= part_after <= whole or whole <= 0:
        raise InvalidAmount("a share must lie within the whole")

    def cumulative(part: int) -> int:
        return total if part == whole else round_minor(_CONTEXT.divide(Decimal(total * part), Decimal(whole)))

    return cumulative(part_after) - cumulative(part_so_far)


@dataclass(frozen=True)
class FeeSchedule:
    """A partner pair's fees, as fractions of the amount they apply to.

    ``merchant_discount_rate``: charged to the acquirer on the payment amount (its currency);
    ``wallet_share_rate``: paid to the wallet on the amount the wallet collects (its currency).
    The gateway keeps the difference as fee income.
    """

    merchant_discount_rate: Decimal = Decimal("0")
    wallet_share_rate: Decimal = Decimal("0")

    def __post_init__(self) -> None:
        for rate in (self.merchant_discount_rate, self.wallet_share_rate):
            if not isinstance(rate, Decimal) or not rate.is_finite() or not 0 <= rate < 1:
                raise InvalidAmount("a fee rate must be a Decimal in [0, 1)")
