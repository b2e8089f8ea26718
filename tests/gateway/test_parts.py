import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from blindgate.api import Money
from blindgate.api.network import ConfigError, parse_network
from blindgate.api.results import ApiError
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import create_gateway_app
from blindgate.gateway.fx import RateBook
from tests.gateway.harness import PAYER, build, pay_body, run


def test_fx_quote_locks_rate_and_rounds_half_up(tmp_path: Path) -> None:
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"base": "USD", "rates": {"USD": "1", "JPY": "150.5", "KWD": "0.3"}}))
    book = RateBook.load(path)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    quote = book.quote("USD", "JPY", now, 60)
    assert quote.rate == Decimal("150.5") and quote.quote_id.startswith("Q")
    assert (quote.expires_at - now).total_seconds() == 60
    assert quote.convert(Money("USD", 1)).value == 2  # 0.01 USD = 1.505 JPY -> 2 (half up)
    assert quote.convert(Money("USD", 3)).value == 5  # 4.515 -> 5
    assert book.quote("JPY", "KWD", now, 60).convert(Money("JPY", 1000)).value == 1993  # 1.993355.. KWD
    with pytest.raises(ApiError) as caught:
        book.quote("USD", "THB", now, 60)
    assert caught.value.code == "CURRENCY_NOT_SUPPORT"


def test_shipped_rate_file_loads() -> None:
    assert {"SGD", "JPY", "KRW", "THB"} <= set(RateBook.load().rates)


def test_network_file_errors_are_clear(tmp_path: Path) -> None:
    net = build(tmp_path)
    document = json.loads((tmp_path / "network.json").read_text())
    for breaking, words in [
        (lambda d: d.update(format="x"), "not blindgate-network/1"),
        (lambda d: d["partners"][0].update(role="bank"), "role"),
        (lambda d: d["partners"][0].update(currency="XXX"), "currency"),
        (lambda d: d["partners"][1].update(client_id=d["partners"][0]["client_id"]), "client_id"),
        (lambda d: d["partners"][0].update(code_prefixes=[]), "prefix"),
        (lambda d: d["partners"][0].pop("keys"), "malformed"),
    ]:
        broken = json.loads(json.dumps(document))
        breaking(broken)
        with pytest.raises(ConfigError, match=words):
            parse_network(broken)
    assert net.network.wallet_for_code(PAYER.payment_code) is not None
    assert net.network.wallet_for_code("99" + PAYER.payment_code) is None


def test_gateway_refuses_keys_that_open_payer_data(tmp_path: Path) -> None:
    net = build(tmp_path / "net")
    with pytest.raises(ValueError, match="no sealing"):
        create_gateway_app(net.network, KeyStore(tmp_path / "net" / "wallet-agent-keys"), "sqlite://")


def test_metrics_have_no_personal_labels(tmp_path: Path) -> None:
    net = build(tmp_path)
    run(net.sdk("/ams/api/v1/payments/pay", pay_body("m-1", 100)))

    async def scrape() -> str:
        async with httpx.AsyncClient(transport=net.router) as client:
            return (await client.get("http://gateway.test/metrics")).text

    text = run(scrape())
    assert 'blindgate_gateway_requests_total{operation="pay",result_code="SUCCESS"} 1.0' in text
    for value in (PAYER.payment_code, PAYER.customer_id, PAYER.email, "m-1"):
        assert value not in text
