"""The reference acquirer: notifications verified, recorded once, acknowledged; SDK requests built."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from blindgate_testbed.partners.acquirer import (
    NOTIFY_PATH,
    NotificationBook,
    Shop,
    create_acquirer_app,
    payment_request,
)
from blindgate_testbed.partners.signed_http import PartnerKeys, signed_request_headers
from blindgate_testbed.population import Population


def test_notifications(tmp_path: Path, backend_and_caller: tuple[PartnerKeys, PartnerKeys]) -> None:
    backend, agent = backend_and_caller
    book = NotificationBook(tmp_path / "acquirer.db")
    client = TestClient(create_acquirer_app(book, backend))
    body = json.dumps(
        {
            "notifyType": "PAYMENT_RESULT",
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
            "paymentRequestId": "N1",
            "paymentId": "G1",
            "paymentAmount": {"currency": "SGD", "value": "1234"},
        }
    )
    for _ in range(2):  # a redelivery is acknowledged and counted, not recorded twice
        answer = client.post(
            NOTIFY_PATH, content=body, headers=signed_request_headers(NOTIFY_PATH, body, agent)
        )
        assert answer.json()["result"]["resultStatus"] == "S" and "signature" in answer.headers
    assert book.outcomes() == {"S": 1} and book.deliveries() == 2
    forged = signed_request_headers(NOTIFY_PATH, body, backend)  # signed with the wrong key
    answer = client.post(NOTIFY_PATH, content=body.replace("N1", "N2"), headers=forged)
    assert answer.json()["result"]["resultCode"] == "INVALID_SIGNATURE"
    assert book.outcomes() == {"S": 1}


def test_order_carries_the_shop_and_optional_buyer(population: Population) -> None:
    merchant = population.acquirers[0].merchants[0]
    shop = Shop(merchant, merchant.stores[0], merchant.stores[0].terminals[0])
    buyer = population.wallets[0].customers[0]
    plain = json.loads(payment_request("P1", shop, "SGD", 100, buyer.payment_code, None).to_ams_json())
    assert plain["paymentMethod"]["paymentMethodId"] == buyer.payment_code
    assert plain["paymentFactor"]["inStorePaymentScenario"] == "PaymentCode"
    assert plain["order"]["merchant"]["referenceMerchantId"] == merchant.merchant_id
    assert "buyer" not in plain["order"]
    loyal = json.loads(payment_request("P1", shop, "SGD", 100, buyer.payment_code, buyer).to_ams_json())
    assert (
        loyal["order"]["buyer"]["buyerPhoneNo"] == buyer.phone
        and loyal["order"]["env"]["clientIp"] == buyer.ip
    )


def test_cached_key_parsing_changes_no_signature(rsa_pair: tuple[Any, Any]) -> None:
    from com.alipay.ams.api.tools import signature_tool

    from blindgate.crypto.signatures import rsa_private_key_for_sdk
    from blindgate_testbed.partners.acquirer import cache_sdk_key_parsing

    merchant_key = rsa_private_key_for_sdk(rsa_pair[0])
    as_shipped = signature_tool.sign("POST", "/ams/api/v1/payments/pay", "C", "T", "{}", merchant_key)
    cache_sdk_key_parsing()
    cache_sdk_key_parsing()  # idempotent
    assert signature_tool.sign("POST", "/ams/api/v1/payments/pay", "C", "T", "{}", merchant_key) == as_shipped
    assert signature_tool.serialization.load_pem_public_key is not None  # everything else passes through
