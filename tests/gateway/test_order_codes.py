"""Merchant-presented order codes through both agents: issue, scan, pay once, expire, cancel, refuse."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, ORDER_CODE_SCAN_PATH, PAY_PATH, WALLET_PAY_PATH
from blindgate.api.results import ApiError
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.app import engine_of
from blindgate.gateway.notifier import Notifier, running
from blindgate.gateway.order_codes import SWEEP_S, OrderCodes
from blindgate.ledger import check_ledger
from tests.gateway.harness import (
    PAYER,
    POOR,
    Clock,
    LocalNetwork,
    build,
    code_of_answer,
    order_code_body,
    run,
)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, clock: Clock) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("net"), clock=clock)


def rows(net: LocalNetwork, table: str) -> int:
    with engine_of(net.gateway_app).connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def outcome(answer: dict[str, Any]) -> tuple[str, str]:
    """(resultCode, resultStatus) of an answer, or of a result object itself."""
    found = answer.get("result", answer)
    return found["resultCode"], found["resultStatus"]


def issue(net: LocalNetwork, request_id: str, value: int = 1000, **extra: Any) -> str:
    answer = run(net.sdk(PAY_PATH, order_code_body(request_id, value, **extra)))
    assert outcome(answer) == ("PAYMENT_IN_PROCESS", "U"), answer
    assert answer["orderCodeForm"]["codeDetails"][0]["codeValueType"] == "QRCODE"
    return code_of_answer(answer)


def test_scan_pays_once_and_the_result_arrives_by_notification_and_inquiry(net: LocalNetwork) -> None:
    issued = run(net.sdk(PAY_PATH, order_code_body("oc-paid", 1000)))
    code = code_of_answer(issued)
    replay = run(net.sdk(PAY_PATH, order_code_body("oc-paid", 1000)))
    assert code_of_answer(replay) == code and replay["paymentId"] == issued["paymentId"]
    pending = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "oc-paid"}))
    assert pending["paymentStatus"] == "PROCESSING" and outcome(pending["paymentResult"])[1] == "U"

    payer_before, poor_before = (net.wallet_book.balance(c.customer_id) for c in (PAYER, POOR))
    scanned = run(net.app_scan(PAYER.payment_code, code))
    assert outcome(scanned) == ("SUCCESS", "S"), scanned
    assert scanned["paymentAmount"] == {"currency": "SGD", "value": "1000"}
    assert scanned["order"]["merchant"]["merchantName"] == "Kopi"
    debit = int(scanned["payToAmount"]["value"])
    assert debit > 0 and payer_before - net.wallet_book.balance(PAYER.customer_id) == debit

    other = run(net.app_scan(POOR.payment_code, code))  # another payer: the code is spent
    assert outcome(other) == ("ORDER_IS_CLOSED", "F")
    again = run(net.app_scan(PAYER.payment_code, code))  # the same payer again: the same payment
    assert outcome(again) == ("SUCCESS", "S") and again["paymentRequestId"] == scanned["paymentRequestId"]
    assert payer_before - net.wallet_book.balance(PAYER.customer_id) == debit  # debited once
    assert net.wallet_book.balance(POOR.customer_id) == poor_before

    notifier: Notifier = net.gateway_app.state.notifier
    assert run(notifier.deliver_due()) == 1
    assert net.notifications.outcomes() == {"S": 1}
    inquiry = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "oc-paid"}))
    assert inquiry["paymentStatus"] == "SUCCESS" and inquiry["paymentId"] == issued["paymentId"]
    assert inquiry["customerId"] == PAYER.customer_id  # sealed by the wallet, opened by the acquirer's agent
    after = run(net.sdk(PAY_PATH, order_code_body("oc-paid", 1000)))  # a replay now gets the payment
    assert outcome(after) == ("SUCCESS", "S") and after["paymentId"] == issued["paymentId"]
    with engine_of(net.gateway_app).connect() as conn:
        assert check_ledger(conn).ok


def test_an_expired_code_cannot_be_paid(net: LocalNetwork, clock: Clock) -> None:
    code = issue(net, "oc-expire", 500)
    before = net.wallet_book.balance(PAYER.customer_id)
    clock.now += timedelta(seconds=net.network.gateway.order_code_ttl_s + 1)
    try:
        assert outcome(run(net.app_scan(PAYER.payment_code, code))) == ("ORDER_IS_CLOSED", "F")
        inquiry = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "oc-expire"}))
        assert inquiry["paymentStatus"] == "FAIL"
        assert outcome(inquiry["paymentResult"]) == ("ORDER_IS_CLOSED", "F")
        assert outcome(run(net.sdk(PAY_PATH, order_code_body("oc-expire", 500)))) == ("ORDER_IS_CLOSED", "F")
    finally:
        clock.now = datetime.now(UTC)
    assert net.wallet_book.balance(PAYER.customer_id) == before


def test_expired_codes_are_swept_and_their_acquirer_notified(tmp_path: Path) -> None:
    clock = Clock()
    net = build(tmp_path, clock=clock)
    codes: OrderCodes = net.gateway_app.state.order_codes
    notifier: Notifier = net.gateway_app.state.notifier
    later = (clock.now + timedelta(minutes=20)).replace(microsecond=0)
    for request_id in ("sw-swept", "sw-used", "sw-cancelled"):
        issue(net, request_id, 500)
    issue(net, "sw-later", 500, paymentExpiryTime=later.isoformat())
    assert outcome(run(net.sdk(CANCEL_PATH, {"paymentRequestId": "sw-cancelled"}))) == ("SUCCESS", "S")
    assert codes.expire_due() == 0  # nothing is due yet
    clock.now += timedelta(seconds=net.network.gateway.order_code_ttl_s + 1)
    # A code used after its expiry is closed there and then; the sweep closes the other one.
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "sw-used"}))["paymentStatus"] == "FAIL"
    assert codes.expire_due() == 1
    assert codes.expire_due() == 0  # closed once: no second notification
    assert run(notifier.deliver_due()) == 2
    assert net.notifications.outcomes() == {"F": 2}  # not the code the acquirer cancelled
    swept = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "sw-swept"}))
    assert swept["paymentStatus"] == "FAIL" and outcome(swept["paymentResult"]) == ("ORDER_IS_CLOSED", "F")
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "sw-later"}))["paymentStatus"] == "PROCESSING"


def test_the_sweep_runs_beside_the_gateway(tmp_path: Path) -> None:
    clock = Clock()
    net = build(tmp_path, clock=clock)
    codes: OrderCodes = net.gateway_app.state.order_codes
    issue(net, "sw-background", 500)
    clock.now += timedelta(seconds=net.network.gateway.order_code_ttl_s + 1)

    async def a_while_with_the_sweeper() -> None:
        async with running(codes.sweep):
            await asyncio.sleep(1.5 * SWEEP_S)

    run(a_while_with_the_sweeper())
    with engine_of(net.gateway_app).connect() as conn:  # closed by the sweep, not by a use
        assert conn.execute(sa.text("SELECT status FROM gw_order_codes")).scalar_one() == "EXPIRED"
    assert rows(net, "gw_notifications") == 1


def test_a_requested_expiry_is_kept_and_bounded(net: LocalNetwork, clock: Clock) -> None:
    soon = (clock.now + timedelta(seconds=90)).replace(microsecond=0)
    body = order_code_body("oc-soon", 300, paymentExpiryTime=soon.isoformat())
    answer = run(net.sdk(PAY_PATH, body))
    assert answer["orderCodeForm"]["expireTime"] == soon.isoformat()
    clock.now += timedelta(seconds=91)
    try:  # a replay after the asked expiry: the order is closed (not a bad expiry)
        assert outcome(run(net.sdk(PAY_PATH, body))) == ("ORDER_IS_CLOSED", "F")
    finally:
        clock.now = datetime.now(UTC)
    before = rows(net, "gw_order_codes")
    for request_id, expiry in (
        ("oc-past", clock.now - timedelta(seconds=1)),
        ("oc-far", clock.now + timedelta(minutes=31)),
    ):
        late = run(net.sdk(PAY_PATH, order_code_body(request_id, 300, paymentExpiryTime=expiry.isoformat())))
        assert outcome(late) == ("PARAM_ILLEGAL", "F")
    assert rows(net, "gw_order_codes") == before


def test_a_cancelled_code_cannot_be_paid(net: LocalNetwork) -> None:
    code = issue(net, "oc-cancel", 700)
    cancel = run(net.sdk(CANCEL_PATH, {"paymentRequestId": "oc-cancel"}))
    assert outcome(cancel) == ("SUCCESS", "S")
    assert outcome(run(net.app_scan(PAYER.payment_code, code))) == ("ORDER_IS_CLOSED", "F")
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "oc-cancel"}))["paymentStatus"] == "CANCELLED"
    assert outcome(run(net.sdk(CANCEL_PATH, {"paymentRequestId": "oc-cancel"}))) == ("SUCCESS", "S")


def test_a_declined_payer_closes_the_code(net: LocalNetwork) -> None:
    code = issue(net, "oc-poor", 900_000)
    declined = run(net.app_scan(POOR.payment_code, code))
    assert outcome(declined) == ("USER_BALANCE_NOT_ENOUGH", "F")
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "oc-poor"}))["paymentStatus"] == "FAIL"
    assert outcome(run(net.app_scan(PAYER.payment_code, code))) == ("ORDER_IS_CLOSED", "F")


@pytest.mark.parametrize(
    ("code_value", "expected"),
    [
        ("BGOC1" + "A" * 32, "INVALID_CODE"),  # well formed, never issued
        ("https://qr.example/not-ours", "INVALID_CODE"),
        ("", "PARAM_ILLEGAL"),
        ("x" * 513, "PARAM_ILLEGAL"),
        ("BGOC1\u00e9" + "A" * 31, "PARAM_ILLEGAL"),
    ],
)
def test_a_bad_code_is_refused_and_stores_nothing(net: LocalNetwork, code_value: str, expected: str) -> None:
    before = (
        rows(net, "gw_payments"),
        rows(net, "gw_order_codes"),
        net.wallet_book.balance(PAYER.customer_id),
    )
    answer = run(scan_at_gateway(net, {"codeValue": code_value, "customerPseudonym": pseudonym_of(net)}))
    assert outcome(answer) == (expected, "F")
    if code_value:  # the wallet's app path gives the same answer (an empty code stops at the backend)
        assert outcome(run(net.app_scan(PAYER.payment_code, code_value)))[1] == "F"
    after = (
        rows(net, "gw_payments"),
        rows(net, "gw_order_codes"),
        net.wallet_book.balance(PAYER.customer_id),
    )
    assert after == before


def test_a_scan_without_a_pseudonym_or_by_an_acquirer_is_refused(net: LocalNetwork) -> None:
    code = issue(net, "oc-who", 300)
    no_pseudonym = run(scan_at_gateway(net, {"codeValue": code, "customerPseudonym": PAYER.customer_id}))
    assert outcome(no_pseudonym) == ("PARAM_ILLEGAL", "F")
    by_acquirer = run(
        scan_at_gateway(
            net,
            {"codeValue": code, "customerPseudonym": pseudonym_of(net)},
            keys="acquirer-agent-keys",
            client_id="ACQ_SG_AGENT",
        )
    )
    assert outcome(by_acquirer) == ("KEY_NOT_FOUND", "F")
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "oc-who"}))["paymentStatus"] == "PROCESSING"


@pytest.mark.parametrize("case", ["buyer_details", "payment_code", "changed_replay", "missing_order"])
def test_bad_order_code_requests_are_refused_and_store_nothing(net: LocalNetwork, case: str) -> None:
    body = order_code_body(f"oc-bad-{case}", 400)
    if case == "buyer_details":  # no wallet to seal to yet: refused, never sent in clear
        body["order"]["buyer"] = {"buyerEmail": PAYER.email}
    elif case == "payment_code":
        body["paymentMethod"]["paymentMethodId"] = PAYER.payment_code
    elif case == "changed_replay":
        issue(net, "oc-bad-changed_replay", 400)
        body["paymentAmount"]["value"] = "401"
    elif case == "missing_order":
        del body["order"]
    before = (rows(net, "gw_payments"), rows(net, "gw_order_codes"))
    answer = run(net.sdk(PAY_PATH, body))
    code = {"changed_replay": "REPEAT_REQ_INCONSISTENT"}.get(case, "PARAM_ILLEGAL")
    assert outcome(answer) == (code, "F")
    assert (rows(net, "gw_payments"), rows(net, "gw_order_codes")) == before
    text = json.dumps(answer)
    assert PAYER.email not in text and PAYER.payment_code not in text


def test_the_gateway_cannot_name_whom_the_wallet_debits(net: LocalNetwork) -> None:
    """Only the wallet's own agent names the customer to debit (for its backend's scan)."""
    before = net.wallet_book.balance(PAYER.customer_id)
    body = {
        "paymentRequestId": "BGforged",
        "acquirerId": "ACQ_SG",
        "acquirerPaymentRequestId": "forged",
        "paymentAmount": {"currency": "SGD", "value": "100"},
        "payToAmount": {"currency": "KRW", "value": "100"},
        "customerId": PAYER.customer_id,
    }
    key, version = KeyStore(net.root / "gateway-keys").signing_key(ED25519)
    payload = encode(body)
    headers = request_headers(WALLET_PAY_PATH, payload, "GATEWAY", key, version)

    async def call() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=net.router) as client:
            response = await client.post(
                "http://w1-agent.test" + WALLET_PAY_PATH, content=payload, headers=headers
            )
        answer: dict[str, Any] = response.json()
        return answer

    assert outcome(run(call()))[1] == "F"
    assert net.wallet_book.balance(PAYER.customer_id) == before


def pseudonym_of(net: LocalNetwork) -> str:
    return KeyStore(net.root / "wallet-agent-keys").pseudonym("gateway-risk", PAYER.customer_id)


async def scan_at_gateway(
    net: LocalNetwork,
    body: dict[str, Any],
    keys: str = "wallet-agent-keys",
    client_id: str = "WALLET_KR_AGENT",
) -> dict[str, Any]:
    """userInitiatedPay straight to the gateway, signed as a wallet's (or another party's) agent."""
    key, version = KeyStore(net.root / keys).signing_key(ED25519)
    payload = encode(body)
    headers = request_headers(ORDER_CODE_SCAN_PATH, payload, client_id, key, version)
    async with httpx.AsyncClient(transport=net.router) as client:
        response = await client.post(
            "http://gateway.test" + ORDER_CODE_SCAN_PATH, content=payload, headers=headers
        )
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    return answer


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store: a SQLite file, or a throw-away schema on the test PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'race.db'}"
        return
    yield request.getfixturevalue("pg_schema_url")


def test_two_payers_scanning_at_once_claim_the_code_once(tmp_path: Path, database_url: str) -> None:
    net = build(tmp_path / "net", database_url=database_url)
    code = issue(net, "oc-race", 500)
    order_codes = net.gateway_app.state.order_codes
    wallet = net.network.partner("WALLET_KR")
    keys = KeyStore(net.root / "wallet-agent-keys")
    start = threading.Barrier(2)

    def scan(customer_id: str) -> str:
        body = {"codeValue": code, "customerPseudonym": keys.pseudonym("gateway-risk", customer_id)}
        start.wait(timeout=10)
        try:
            return str(asyncio.run(order_codes.scan(wallet, body))["result"]["resultCode"])
        except ApiError as refused:
            return refused.code

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = list(pool.map(scan, [PAYER.customer_id, POOR.customer_id]))
    assert sorted(codes) == ["ORDER_IS_CLOSED", "SUCCESS"]
    with engine_of(net.gateway_app).connect() as conn:
        made = conn.execute(sa.text("SELECT count(*) FROM gw_payments WHERE payment_request_id = 'oc-race'"))
        assert made.scalar_one() == 1
        assert check_ledger(conn).ok
    engine_of(net.gateway_app).dispose()


def test_a_payer_over_the_velocity_limit_is_refused_before_any_debit(tmp_path: Path) -> None:
    from tests.gateway.harness import pay_body

    net = build(tmp_path / "net", risk={"max_payments": 1, "window_s": 3600})
    assert outcome(run(net.sdk(PAY_PATH, pay_body("v-1", 100))))[1] == "S"  # the payer's one payment
    code = issue(net, "oc-velocity", 5)  # 0.05 SGD: within what POOR holds
    before = (rows(net, "gw_payments"), net.wallet_book.balance(PAYER.customer_id))
    assert outcome(run(net.app_scan(PAYER.payment_code, code))) == ("RISK_REJECT", "F")
    assert (rows(net, "gw_payments"), net.wallet_book.balance(PAYER.customer_id)) == before
    assert outcome(run(net.app_scan(POOR.payment_code, code))) == ("SUCCESS", "S")  # still open for others


def test_plaintext_mode_runs_the_same_order_code_path(tmp_path: Path) -> None:
    plain = build(tmp_path / "plain", plaintext=True)
    code = issue(plain, "oc-plain", 300)
    assert outcome(run(plain.app_scan(PAYER.payment_code, code))) == ("SUCCESS", "S")
    inquiry = run(plain.sdk(INQUIRY_PATH, {"paymentRequestId": "oc-plain"}))
    assert inquiry["paymentStatus"] == "SUCCESS" and inquiry["customerId"] == PAYER.customer_id
