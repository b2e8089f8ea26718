"""The rounding rule, FX with a locked quote, fees and cumulative shares."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blindgate.ledger import FeeSchedule, InvalidAmount, convert, exponent, fee
from blindgate.ledger.money import check_minor_units, proportional_share


def test_exponents_follow_iso_4217() -> None:
    assert (exponent("JPY"), exponent("USD"), exponent("KWD")) == (0, 2, 3)
    with pytest.raises(InvalidAmount):
        exponent("XXX")


def test_convert_shifts_exponents_and_rounds_half_up() -> None:
    assert convert(1000, "USD", "CNY", Decimal("7.1234")) == 7123  # 71.234 CNY
    assert convert(1000, "USD", "JPY", Decimal("151.235")) == 1512  # 1512.35 JPY
    assert convert(1000, "USD", "JPY", Decimal("151.25")) == 1513  # 1512.5 -> up
    assert convert(1, "JPY", "KWD", Decimal("0.0025")) == 3  # 2.5 fils -> up
    assert convert(12345, "KWD", "USD", Decimal("3.25")) == 4012  # 40.12125 USD


def test_fee_rounds_half_up() -> None:
    assert fee(1001, Decimal("0.025")) == 25  # 25.025
    assert fee(1020, Decimal("0.025")) == 26  # 25.5
    assert fee(1000, Decimal("0")) == 0
    with pytest.raises(InvalidAmount):
        fee(1000, Decimal("1"))


def test_bad_amounts_are_refused() -> None:
    for bad in (0, -1, 1.5, True, "100"):
        with pytest.raises(InvalidAmount):
            check_minor_units(bad, "USD")
    with pytest.raises(InvalidAmount):
        FeeSchedule(merchant_discount_rate=Decimal("-0.01"))
    with pytest.raises(InvalidAmount):
        convert(100, "USD", "EUR", Decimal("0"))


@given(
    total=st.integers(0, 10**12),
    whole=st.integers(1, 10**9),
    cuts=st.lists(st.integers(0, 10**9), max_size=8),
)
def test_cumulative_shares_sum_to_the_total(total: int, whole: int, cuts: list[int]) -> None:
    points = sorted({0, whole, *(c % (whole + 1) for c in cuts)})
    shares = [proportional_share(total, a, b, whole) for a, b in itertools.pairwise(points)]
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
