"""Fees and the business day come from the network file and reach the ledger (bookkeeping)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.api.models import PAY_PATH
from blindgate.api.network import ConfigError, parse_network
from blindgate.gateway.bookkeeping import cutoff_of, fees_of
from blindgate.ledger import check_ledger
from blindgate.ledger.money import convert
from blindgate.storage import open_engine
from blindgate.storage.schema import entries
from tests.gateway.harness import ACQUIRER_ID, WALLET_ID, build, pay_body, run

RATES = ("0.005", "0.015")  # (wallet share, merchant discount rate)
SEOUL_6AM = {"zone": "Asia/Seoul", "cutoff": "06:00"}


def test_a_payment_carries_the_partners_fee_rates(tmp_path: Path) -> None:
    net = build(tmp_path, fee_rates=RATES, business_day=SEOUL_6AM)
    answer = run(net.sdk(PAY_PATH, pay_body("fee-1", 1000)))
    assert answer["result"]["resultStatus"] == "S", answer
    engine = open_engine(f"sqlite:///{tmp_path / 'gateway.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(entries).where(entries.c.event_type == "CAPTURE")).mappings().all()
        assert check_ledger(conn).ok
    engine.dispose()
    assert len(rows) == 1
    row = rows[0]
    assert row["acquirer_fee"] == 15  # 1.5% of 10.00 SGD, half up
    expected_wallet_fee = int((Decimal(row["wallet_amount"]) * Decimal("0.005")).quantize(1, ROUND_HALF_UP))
    assert row["wallet_fee"] == expected_wallet_fee > 0
    assert row["wallet_amount"] == convert(1000, "SGD", "KRW", Decimal(row["fx_rate"]))
    # The day is Seoul's, ending 06:00 local (21:00 UTC the evening before).
    occurred = row["occurred_at"].replace(tzinfo=UTC)
    assert row["business_date"] == cutoff_of(net.network).day_of(occurred)


def test_the_rates_and_cutoff_read_from_the_file(tmp_path: Path) -> None:
    net = build(tmp_path, fee_rates=RATES, business_day=SEOUL_6AM)
    fees = fees_of(net.network, ACQUIRER_ID, WALLET_ID)
    assert (fees.merchant_discount_rate, fees.wallet_share_rate) == (Decimal("0.015"), Decimal("0.005"))
    cutoff = cutoff_of(net.network)
    assert (cutoff.zone, cutoff.at) == ("Asia/Seoul", time(6))
    assert cutoff.day_of(datetime(2026, 11, 24, 20, 59, tzinfo=UTC)) == date(2026, 11, 24)
    assert cutoff.day_of(datetime(2026, 11, 24, 21, 0, tzinfo=UTC)) == date(2026, 11, 25)
    zero = fees_of(None, ACQUIRER_ID, WALLET_ID)
    assert zero.merchant_discount_rate == zero.wallet_share_rate == 0


@pytest.mark.parametrize(
    ("where", "value", "words"),
    [
        ("partner", 0.015, "fee_rate"),  # a float: refused, rates are decimal strings
        ("partner", "1.2", "fee_rate"),
        ("partner", "-0.01", "fee_rate"),
        ("partner", "abc", "fee_rate"),
        ("gateway", {"zone": "Mars/Olympus", "cutoff": "00:00"}, "business_day"),
        ("gateway", {"zone": "UTC", "cutoff": "25:00"}, "business_day"),
    ],
)
def test_bad_fee_rates_and_cutoffs_are_refused(tmp_path: Path, where: str, value: object, words: str) -> None:
    build(tmp_path)
    document = json.loads((tmp_path / "network.json").read_text())
    if where == "partner":
        document["partners"][1]["fee_rate"] = value
    else:
        document["gateway"]["business_day"] = value
    with pytest.raises(ConfigError, match=words):
        parse_network(document)
