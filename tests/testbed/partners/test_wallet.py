"""The reference wallet backend: debits, idempotency, cancels, refunds, and its signed API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from blindgate.crypto.signatures import verify_message
from blindgate_testbed.partners.signed_http import PartnerKeys, Rejected, signed_request_headers
from blindgate_testbed.partners.wallet import PAY_PATH, REFUND_PATH, WalletBook, create_wallet_app
from blindgate_testbed.population import Population


def pay_body(code: str, value: int, request_id: str = "PR1", **extra: Any) -> dict[str, Any]:
    return {
        "paymentRequestId": request_id,
        "paymentAmount": {"currency": "KRW", "value": str(value)},
        "paymentMethod": {"paymentMethodType": "CONNECT_WALLET", "paymentMethodId": code},
        **extra,
    }


def rich_customer(population: Population) -> Any:
    return next(c for c in population.wallets[0].customers if c.balance >= 1_000_000)


def test_pay_debits_once_and_replays(book: WalletBook, population: Population) -> None:
    customer = rich_customer(population)
    first = book.pay(pay_body(customer.payment_code, 12_345))
    assert first["result"]["resultStatus"] == "S" and first["customerId"] == customer.customer_id
    assert book.balance(customer.customer_id) == customer.balance - 12_345
    assert book.pay(pay_body(customer.payment_code, 12_345)) == first  # the replay
    assert book.balance(customer.customer_id) == customer.balance - 12_345
    clash = book.pay(pay_body(customer.payment_code, 999))
    assert clash["result"]["resultCode"] == "REPEAT_REQ_INCONSISTENT"


def test_declines_change_nothing(book: WalletBook, population: Population) -> None:
    customer = rich_customer(population)
    before = book.total_balance()
    too_much = book.pay(pay_body(customer.payment_code, customer.balance + 1, "PR2"))
    assert too_much["result"]["resultCode"] == "USER_BALANCE_NOT_ENOUGH"
    assert too_much["result"]["resultStatus"] == "F"
    assert book.pay(pay_body("281011000000000000000000", 10, "PR3"))["result"]["resultCode"] == "INVALID_CODE"
    wrong = pay_body(customer.payment_code, 10, "PR4", payToAmount={"currency": "THB", "value": "10"})
    assert book.pay(wrong)["result"]["resultCode"] == "CURRENCY_NOT_SUPPORT"
    with pytest.raises(Rejected):
        book.pay(pay_body(customer.payment_code, 0, "PR5"))
    with pytest.raises(Rejected):
        book.pay({"paymentRequestId": "PR6"})
    assert book.total_balance() == before


def test_cancel_gives_back_and_closes(book: WalletBook, population: Population) -> None:
    customer = rich_customer(population)
    book.pay(pay_body(customer.payment_code, 5_000, "PC1"))
    assert book.cancel({"paymentRequestId": "PC1"})["result"]["resultStatus"] == "S"
    assert book.cancel({"paymentRequestId": "PC1"})["result"]["resultStatus"] == "S"  # idempotent
    assert book.balance(customer.customer_id) == customer.balance
    assert book.inquiry({"paymentRequestId": "PC1"})["paymentResult"]["resultCode"] == "ORDER_IS_CLOSED"
    # A cancel that overtakes its payment closes the request id.
    book.cancel({"paymentRequestId": "PC2"})
    late = book.pay(pay_body(customer.payment_code, 5_000, "PC2"))
    assert late["result"]["resultCode"] == "ORDER_IS_CLOSED"
    assert book.balance(customer.customer_id) == customer.balance


def test_refunds_partial_multiple_and_cross_currency(book: WalletBook, population: Population) -> None:
    customer = rich_customer(population)
    # An order of 10.00 SGD paid with 9,999 KRW.
    book.pay(
        pay_body(customer.payment_code, 1000, "PX", payToAmount={"currency": "KRW", "value": "9999"})
        | {"paymentAmount": {"currency": "SGD", "value": "1000"}}
    )
    one_third = {"currency": "SGD", "value": "333"}
    r1 = book.refund({"refundRequestId": "R1", "paymentRequestId": "PX", "refundAmount": one_third})
    assert r1["refundPayToAmount"] == {"currency": "KRW", "value": str(333 * 9999 // 1000)}
    assert book.refund({"refundRequestId": "R1", "paymentRequestId": "PX", "refundAmount": one_third}) == r1
    over = {"currency": "SGD", "value": "668"}
    assert (
        book.refund({"refundRequestId": "R2", "paymentRequestId": "PX", "refundAmount": over})["result"][
            "resultCode"
        ]
        == "REFUND_AMOUNT_EXCEED"
    )
    rest = {"currency": "SGD", "value": "667"}
    book.refund({"refundRequestId": "R3", "paymentRequestId": "PX", "refundAmount": rest})
    assert book.balance(customer.customer_id) == customer.balance  # full refund is exact
    missing = book.refund({"refundRequestId": "R4", "paymentRequestId": "NOPE", "refundAmount": rest})
    assert missing["result"]["resultCode"] == "ORDER_NOT_EXIST"


def test_inquiry(book: WalletBook, population: Population) -> None:
    customer = rich_customer(population)
    assert book.inquiry({"paymentRequestId": "Q1"})["paymentResult"]["resultCode"] == "ORDER_NOT_EXIST"
    book.pay(pay_body(customer.payment_code, 100, "Q1"))
    answer = book.inquiry({"paymentRequestId": "Q1"})
    assert answer["paymentResult"]["resultStatus"] == "S" and answer["customerId"] == customer.customer_id


def test_signed_api(
    book: WalletBook, population: Population, backend_and_caller: tuple[PartnerKeys, PartnerKeys]
) -> None:
    backend, caller = backend_and_caller
    client = TestClient(create_wallet_app(book, backend))
    customer = rich_customer(population)
    body = json.dumps(pay_body(customer.payment_code, 700, "API1"))
    response = client.post(PAY_PATH, content=body, headers=signed_request_headers(PAY_PATH, body, caller))
    assert response.status_code == 200 and response.json()["result"]["resultStatus"] == "S"
    verify_message(
        backend.private_key.public_key(), response.headers["signature"], "POST", PAY_PATH,
        response.headers["client-id"], response.headers["response-time"], response.text,
    )  # fmt: skip
    # Bad signature, stale time, unknown client, malformed JSON: an F result in a 200, nothing stored.
    bad = signed_request_headers(PAY_PATH, body, caller) | {"signature": "algorithm=RSA256,signature=AAAA"}
    stale = signed_request_headers(PAY_PATH, body, caller) | {"request-time": "2001-01-01T00:00:00+00:00"}
    unknown = signed_request_headers(PAY_PATH, body, caller) | {"client-id": "SOMEONE"}
    other = json.dumps(pay_body(customer.payment_code, 700, "API2"))
    for headers, content, code in [
        (bad, other, "INVALID_SIGNATURE"),
        (stale, other, "INVALID_SIGNATURE"),
        (unknown, other, "KEY_NOT_FOUND"),
        (signed_request_headers(REFUND_PATH, "{", caller), "{", "PARAM_ILLEGAL"),
    ]:
        path = REFUND_PATH if content == "{" else PAY_PATH
        answer = client.post(path, content=content, headers=headers)
        assert answer.status_code == 200
        assert answer.json()["result"]["resultCode"] == code and "Traceback" not in answer.text
    assert book.inquiry({"paymentRequestId": "API2"})["paymentResult"]["resultCode"] == "ORDER_NOT_EXIST"
    assert book.balance(customer.customer_id) == customer.balance - 700


def test_operations_by_payment_id(book: WalletBook, population: Population) -> None:
    customer = rich_customer(population)
    payment_id = book.pay(pay_body(customer.payment_code, 400, "PI1"))["paymentId"]
    refund = {
        "refundRequestId": "RI1",
        "paymentId": payment_id,
        "refundAmount": {"currency": "KRW", "value": "100"},
    }
    assert book.refund(refund)["result"]["resultStatus"] == "S"
    assert book.inquiry({"paymentId": payment_id})["paymentRequestId"] == "PI1"
    assert book.cancel({"paymentId": payment_id})["result"]["resultStatus"] == "S"
    assert book.balance(customer.customer_id) == customer.balance
    assert book.cancel({"paymentId": "NOPE"})["result"]["resultCode"] == "ORDER_NOT_EXIST"


def test_slow_answers_are_repeatable_and_bounded() -> None:
    from blindgate_testbed.partners.wallet import SlowAnswers

    slow = SlowAnswers(share=0.1, seconds=1.0)
    picked = [n for n in range(2000) if slow.applies_to(f"PAY{n}")]
    assert 120 < len(picked) < 280  # about a tenth
    assert picked == [n for n in range(2000) if slow.applies_to(f"PAY{n}")]
    assert not SlowAnswers().applies_to("PAY1") and not slow.applies_to(None)


def test_pay_by_customer_id_for_a_scanned_order_code(book: WalletBook, population: Population) -> None:
    customer = rich_customer(population)
    body = {
        "paymentRequestId": "OC1",
        "paymentAmount": {"currency": "KRW", "value": "900"},
        "customerId": customer.customer_id,  # named by the wallet's own agent for its app's scan
    }
    first = book.pay(body)
    assert first["result"]["resultStatus"] == "S" and first["customerId"] == customer.customer_id
    assert book.pay(body) == first and book.balance(customer.customer_id) == customer.balance - 900
    unknown = book.pay({**body, "paymentRequestId": "OC2", "customerId": "NOBODY"})
    assert unknown["result"]["resultStatus"] == "F"
    assert book.balance(customer.customer_id) == customer.balance - 900


def test_app_scan_asks_the_agent_signed_and_relays_its_verified_answer(
    book: WalletBook, population: Population, backend_and_caller: tuple[PartnerKeys, PartnerKeys]
) -> None:
    import httpx
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from blindgate_testbed.partners.signed_http import read_signed_json, signed_json_response
    from blindgate_testbed.partners.wallet import APP_SCAN_PATH, SCAN_PATH, OrderCodeScanner

    backend, agent = backend_and_caller  # the agent's keys: it verifies the backend, signs its answers
    seen: list[dict[str, Any]] = []
    forge = {"on": False}

    async def user_initiated_pay(request: Request) -> Response:
        seen.append(await read_signed_json(request, agent))
        answer = {"result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "ok"}}
        signer = (
            PartnerKeys(agent.client_id, backend.private_key, agent.peer_public_key) if forge["on"] else agent
        )
        return await signed_json_response(request, answer, signer)

    fake_agent = Starlette(routes=[Route(SCAN_PATH, user_initiated_pay, methods=["POST"])])
    scanner = OrderCodeScanner("http://agent.test", backend, transport=httpx.ASGITransport(app=fake_agent))
    client = TestClient(create_wallet_app(book, backend, scanner=scanner))
    customer = rich_customer(population)
    code = "BGOC1" + "x" * 32

    ok = client.post(APP_SCAN_PATH, json={"paymentCode": customer.payment_code, "codeValue": code})
    assert ok.json()["result"]["resultStatus"] == "S"
    assert seen == [{"codeValue": code, "customerId": customer.customer_id}]
    forge["on"] = True  # an answer the agent's key did not sign is no answer
    forged = client.post(APP_SCAN_PATH, json={"paymentCode": customer.payment_code, "codeValue": code})
    assert forged.json()["result"]["resultStatus"] == "U"
    for body, expected in [
        ({"paymentCode": "0000", "codeValue": code}, "INVALID_CODE"),
        ({"paymentCode": customer.payment_code, "codeValue": ""}, "PARAM_ILLEGAL"),
        ({"paymentCode": customer.payment_code}, "PARAM_ILLEGAL"),
    ]:
        refused = client.post(APP_SCAN_PATH, json=body)
        assert refused.json()["result"] == {
            "resultCode": expected,
            "resultStatus": "F",
            "resultMessage": refused.json()["result"]["resultMessage"],
        }
        assert customer.payment_code not in refused.text
    assert len(seen) == 2  # refused scans never reached the agent
    assert book.balance(customer.customer_id) == customer.balance
