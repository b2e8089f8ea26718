"""A refund left U (the wallet's answer lost, or the wallet unreachable) is settled by
inquiryRefund or a replay: the wallet is asked again and the outcome, ledger reversal
included, is recorded exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from blindgate import ledger
from blindgate.api.models import (
    CANCEL_PATH,
    INQUIRY_REFUND_PATH,
    PAY_PATH,
    REFUND_PATH,
    WALLET_CANCEL_PATH,
    WALLET_REFUND_PATH,
)
from blindgate.api.signed import digest_of_request, signed_response
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.app import engine_of
from blindgate.storage.schema import cancel_holds, entries, payments
from tests.gateway.harness import PAYER, LocalNetwork, answers_lost, build, pay_body, requests_held, run

WALLET_AGENT = "w1-agent.test"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("net"))


def refund_body(payment_id: str, refund_id: str, value: int) -> dict[str, Any]:
    return {"refundRequestId": refund_id, "paymentId": payment_id,
            "refundAmount": {"currency": "SGD", "value": str(value)}}  # fmt: skip


def refund(net: LocalNetwork, payment_id: str, refund_id: str, value: int) -> dict[str, Any]:
    answer: dict[str, Any] = run(net.sdk(REFUND_PATH, refund_body(payment_id, refund_id, value)))
    return answer


def refund_status(net: LocalNetwork, refund_id: str) -> tuple[str, str]:
    answer = run(net.sdk(INQUIRY_REFUND_PATH, {"refundRequestId": refund_id}))
    assert answer["result"]["resultCode"] == "SUCCESS"
    return answer["refundStatus"], answer["refundResult"]["resultStatus"]


def reversals(net: LocalNetwork, gateway_refund_id: str) -> int:
    with engine_of(net.gateway_app).connect() as conn:
        found = conn.execute(
            sa.select(sa.func.count()).where(entries.c.event_key == f"refund:{gateway_refund_id}")
        )
        return int(found.scalar_one())


def paid(net: LocalNetwork, request_id: str, value: int) -> str:
    answer = run(net.sdk(PAY_PATH, pay_body(request_id, value)))
    assert answer["result"]["resultStatus"] == "S"
    payment_id: str = answer["paymentId"]
    return payment_id


def test_inquiry_settles_a_refund_whose_answer_was_lost(net: LocalNetwork) -> None:
    payment_id = paid(net, "ru-lost", 1000)
    after_pay = net.wallet_book.balance(PAYER.customer_id)
    with answers_lost(net.router, WALLET_AGENT, WALLET_REFUND_PATH):
        first = refund(net, payment_id, "ru-lost-r", 400)
        assert first["result"]["resultStatus"] == "U"
        assert refund_status(net, "ru-lost-r") == ("PROCESSING", "U")  # still no answer
    given_back = net.wallet_book.balance(PAYER.customer_id) - after_pay
    assert given_back > 0  # the wallet did refund; only its answer was lost
    assert reversals(net, first["refundId"]) == 0
    assert refund_status(net, "ru-lost-r") == ("SUCCESS", "S")
    assert reversals(net, first["refundId"]) == 1
    # asked again, replayed: the same outcome, nothing given back or posted twice
    assert refund_status(net, "ru-lost-r") == ("SUCCESS", "S")
    assert refund(net, payment_id, "ru-lost-r", 400)["result"]["resultCode"] == "SUCCESS"
    assert net.wallet_book.balance(PAYER.customer_id) - after_pay == given_back
    assert reversals(net, first["refundId"]) == 1


def test_a_refund_that_never_reached_the_wallet_is_done_once_asked_again(net: LocalNetwork) -> None:
    payment_id = paid(net, "ru-down", 1000)
    after_pay = net.wallet_book.balance(PAYER.customer_id)
    net.router.down.add(WALLET_AGENT)
    try:
        first = refund(net, payment_id, "ru-down-r", 1000)
        assert first["result"]["resultStatus"] == "U"
        assert refund_status(net, "ru-down-r") == ("PROCESSING", "U")
    finally:
        net.router.down.clear()
    assert net.wallet_book.balance(PAYER.customer_id) == after_pay  # nothing yet
    assert refund_status(net, "ru-down-r") == ("SUCCESS", "S")
    assert refund(net, payment_id, "ru-down-r", 1000)["result"]["resultCode"] == "SUCCESS"
    assert reversals(net, first["refundId"]) == 1
    with engine_of(net.gateway_app).connect() as conn:
        wallet_amount = conn.execute(
            sa.text("SELECT wallet_amount FROM gw_payments WHERE payment_id = :p"), {"p": payment_id}
        ).scalar_one()
    assert net.wallet_book.balance(PAYER.customer_id) - after_pay == wallet_amount  # in full, once


def test_a_refund_settled_late_asks_for_the_share_it_first_asked(net: LocalNetwork) -> None:
    # 10.01 SGD: the wallet's share of the first 3.33 and of the next 3.33 differ by one won,
    # so the wallet (idempotent on the refund id and amount) sees any change of the ask.
    before = net.wallet_book.balance(PAYER.customer_id)
    payment_id = paid(net, "ru-late", 1001)
    with answers_lost(net.router, WALLET_AGENT, WALLET_REFUND_PATH):
        assert refund(net, payment_id, "ru-late-a", 333)["result"]["resultStatus"] == "U"
    assert refund(net, payment_id, "ru-late-b", 333)["result"]["resultCode"] == "SUCCESS"
    assert refund_status(net, "ru-late-a") == ("SUCCESS", "S")
    assert refund(net, payment_id, "ru-late-c", 335)["result"]["resultCode"] == "SUCCESS"
    assert net.wallet_book.balance(PAYER.customer_id) == before  # refunded in full, to the won


def test_the_ledger_balances_after_all_that(net: LocalNetwork) -> None:
    with engine_of(net.gateway_app).connect() as conn:
        report = ledger.check_ledger(conn)
    assert report.ok, report.problems


def test_a_cancel_waits_for_a_refund_left_u(net: LocalNetwork) -> None:
    """A cancel would reverse what remains without the refund the wallet may already have made."""
    payment_id = paid(net, "ru-cancel", 1000)
    with answers_lost(net.router, WALLET_AGENT, WALLET_REFUND_PATH):
        first = refund(net, payment_id, "ru-cancel-r", 300)
    assert first["result"]["resultStatus"] == "U"
    before = net.wallet_book.balance(PAYER.customer_id)
    refused = run(net.sdk(CANCEL_PATH, {"paymentId": payment_id}))
    assert refused["result"] == {
        **refused["result"],
        "resultCode": "ORDER_STATUS_INVALID",
        "resultStatus": "F",
    }
    assert net.wallet_book.balance(PAYER.customer_id) == before  # the wallet was not asked
    assert refund_status(net, "ru-cancel-r") == ("SUCCESS", "S")  # settled by inquiry
    cancelled = run(net.sdk(CANCEL_PATH, {"paymentId": payment_id}))
    assert cancelled["result"]["resultCode"] == "SUCCESS"
    with engine_of(net.gateway_app).connect() as conn:
        assert ledger.check_ledger(conn).ok


@pytest.mark.parametrize("acted", [False, True], ids=["cancel-not-yet-done", "cancel-done-answer-on-its-way"])
def test_a_refund_is_refused_while_a_cancel_is_at_the_wallet(net: LocalNetwork, acted: bool) -> None:
    """Cancel and refund of one payment at the same instant. The wallet's cancel gives back all
    that remains, so a refund accepted meanwhile would be booked beside it: refused instead."""
    before = net.wallet_book.balance(PAYER.customer_id)
    payment_id = paid(net, f"ru-cancel-race-{acted}", 1000)

    async def race() -> tuple[dict[str, Any], dict[str, Any]]:
        with requests_held(net.router, WALLET_AGENT, WALLET_CANCEL_PATH, acted) as held:
            cancel = asyncio.create_task(net.sdk(CANCEL_PATH, {"paymentId": payment_id}))
            await held.reached.wait()  # the cancel has passed the gateway's checks
            with answers_lost(net.router, WALLET_AGENT, WALLET_REFUND_PATH):
                refunded = await net.sdk(
                    REFUND_PATH, refund_body(payment_id, f"ru-cancel-race-{acted}-r", 300)
                )
            held.release.set()
            return await cancel, refunded

    cancelled, refunded = run(race())
    assert cancelled["result"]["resultCode"] == "SUCCESS"
    assert refunded["result"]["resultCode"] == "ORDER_STATUS_INVALID"
    assert net.wallet_book.balance(PAYER.customer_id) == before
    with engine_of(net.gateway_app).connect() as conn:
        assert ledger.check_ledger(conn).ok
        remaining = conn.execute(
            sa.select(payments.c.status, payments.c.refunded).where(payments.c.payment_id == payment_id)
        ).one()
    assert tuple(remaining) == ("CANCELLED", 0)


def test_a_cancel_is_refused_while_a_refund_is_at_the_wallet(net: LocalNetwork) -> None:
    payment_id = paid(net, "ru-refund-race", 1000)

    async def race() -> tuple[dict[str, Any], dict[str, Any]]:
        with requests_held(net.router, WALLET_AGENT, WALLET_REFUND_PATH) as held:
            refunding = asyncio.create_task(
                net.sdk(REFUND_PATH, refund_body(payment_id, "ru-refund-race-r", 300))
            )
            await held.reached.wait()
            cancelled = await net.sdk(CANCEL_PATH, {"paymentId": payment_id})
            held.release.set()
            return cancelled, await refunding

    cancelled, refunded = run(race())
    assert cancelled["result"]["resultCode"] == "ORDER_STATUS_INVALID"
    assert refunded["result"]["resultCode"] == "SUCCESS"


def test_refunds_wait_for_a_cancel_left_unknown(net: LocalNetwork) -> None:
    """The wallet's answer to a cancel is lost: it may have cancelled, so refunds are refused
    until the cancel is asked again and settles."""
    before = net.wallet_book.balance(PAYER.customer_id)
    payment_id = paid(net, "ru-cancel-u", 1000)
    with answers_lost(net.router, WALLET_AGENT, WALLET_CANCEL_PATH):
        lost = run(net.sdk(CANCEL_PATH, {"paymentId": payment_id}))
    assert lost["result"]["resultCode"] == "UNKNOWN_EXCEPTION"
    assert refund(net, payment_id, "ru-cancel-u-r", 100)["result"]["resultCode"] == "ORDER_STATUS_INVALID"
    assert run(net.sdk(CANCEL_PATH, {"paymentId": payment_id}))["result"]["resultCode"] == "SUCCESS"
    assert net.wallet_book.balance(PAYER.customer_id) == before
    assert holds(net, payment_id) == 0


def test_a_cancel_the_wallet_refuses_lets_refunds_through_again(net: LocalNetwork) -> None:
    payment_id = paid(net, "ru-cancel-f", 1000)
    with wallet_answers(net, WALLET_CANCEL_PATH, {"resultCode": "ORDER_IS_CLOSED", "resultStatus": "F"}):
        refused = run(net.sdk(CANCEL_PATH, {"paymentId": payment_id}))
    assert refused["result"]["resultCode"] == "ORDER_IS_CLOSED"
    assert holds(net, payment_id) == 0
    assert refund(net, payment_id, "ru-cancel-f-r", 100)["result"]["resultCode"] == "SUCCESS"


def holds(net: LocalNetwork, payment_id: str) -> int:
    with engine_of(net.gateway_app).connect() as conn:
        found = conn.execute(sa.select(sa.func.count()).where(cancel_holds.c.payment_id == payment_id))
        return int(found.scalar_one())


@contextmanager
def wallet_answers(net: LocalNetwork, path: str, outcome: dict[str, str]) -> Iterator[None]:
    """While the block runs, the wallet agent answers ``path`` with ``outcome``, signed, itself."""
    keys = KeyStore(net.root / "wallet-agent-keys")
    signer, version = keys.signing_key(ED25519)
    inner = net.router.apps[WALLET_AGENT]

    class Answer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path != path:
                return await inner.handle_async_request(request)
            asked = json.loads(request.content)
            answer = {
                "result": {**outcome, "resultMessage": "test"},
                "paymentRequestId": asked["paymentRequestId"],
            }
            answering = digest_of_request(request.headers, path, request.content)
            signed = signed_response(path, answer, "WALLET_KR_AGENT", signer, version, answering)
            return httpx.Response(200, headers=dict(signed.headers), content=bytes(signed.body))

    net.router.apps[WALLET_AGENT] = Answer()  # type: ignore[assignment]
    try:
        yield
    finally:
        net.router.apps[WALLET_AGENT] = inner
