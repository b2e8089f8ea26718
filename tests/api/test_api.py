import json

import pytest

from blindgate.api import EXPONENTS, RESULTS, ApiError, Money, parse_money, result
from blindgate.api.models import PayRequest, parse_json_object
from blindgate.ledger.money import exponent as ledger_exponent


def test_exponents_match_the_ledger() -> None:
    for currency, digits in EXPONENTS.items():
        assert ledger_exponent(currency) == digits
    assert (EXPONENTS["JPY"], EXPONENTS["USD"], EXPONENTS["KWD"]) == (0, 2, 3)


def test_parse_money_reads_minor_units() -> None:
    assert parse_money({"currency": "USD", "value": "1000"}, "a") == Money("USD", 1000)
    assert Money("KRW", 5).to_wire() == {"currency": "KRW", "value": "5"}


@pytest.mark.parametrize(
    "raw",
    [None, "USD", {"currency": "usd", "value": "1"}, {"currency": "USD", "value": 10},
     {"currency": "USD", "value": "1.5"}, {"currency": "USD", "value": "0"},
     {"currency": "USD", "value": "9" * 16}, {"currency": "USD", "value": "-1"}],
)  # fmt: skip
def test_parse_money_rejects_with_param_illegal(raw: object) -> None:
    with pytest.raises(ApiError) as caught:
        parse_money(raw, "paymentAmount")
    assert caught.value.code == "PARAM_ILLEGAL"
    assert "paymentAmount" in caught.value.message


def test_unknown_currency_is_not_supported() -> None:
    with pytest.raises(ApiError) as caught:
        parse_money({"currency": "XXX", "value": "1"}, "a")
    assert caught.value.code == "CURRENCY_NOT_SUPPORT"


def test_results_have_statuses() -> None:
    assert result("SUCCESS")["resultStatus"] == "S"
    assert result("PAYMENT_IN_PROCESS")["resultStatus"] == "U"
    assert ApiError("INVALID_SIGNATURE").body()["result"]["resultStatus"] == "F"
    assert all(status in "SFU" for status, _ in RESULTS.values())


@pytest.mark.parametrize(
    "body", [b"{", b"[]", b"\xff", json.dumps({"a": [[[[[[[[[[1]]]]]]]]]]}).encode(), b" " * (65 * 1024)]
)
def test_bad_bodies_are_param_illegal(body: bytes) -> None:
    with pytest.raises(ApiError) as caught:
        parse_json_object(body)
    assert caught.value.code == "PARAM_ILLEGAL"


def test_pay_request_names_the_bad_field_not_its_value() -> None:
    body = {"paymentRequestId": "r1", "productCode": "IN_STORE_PAYMENT",
            "paymentAmount": {"currency": "SGD", "value": "100"},
            "paymentMethod": {"paymentMethodType": "CONNECT_WALLET", "customerBelongsTo": "W1"}}  # fmt: skip
    assert PayRequest.parse(body).wallet_id == "W1"
    body["paymentRequestId"] = "secret\u00e9value"
    with pytest.raises(ApiError) as caught:
        PayRequest.parse(body)
    assert "secret" not in caught.value.message and "paymentRequestId" in caught.value.message
