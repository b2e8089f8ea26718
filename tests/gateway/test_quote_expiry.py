"""A payment left U is never completed at a stale rate: after its FX quote expires, a replay
or an inquiry closes it at the wallet and fails it with FX_QUOTE_EXPIRED."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

import pytest

from blindgate import ledger
from blindgate.api.models import INQUIRY_PATH, PAY_PATH, WALLET_PAY_PATH
from blindgate.gateway.app import engine_of
from blindgate.gateway.repository import PaymentStatus
from tests.gateway.harness import PAYER, Clock, LocalNetwork, answers_lost, build, pay_body, run

WALLET_AGENT = "w1-agent.test"


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory, clock: Clock) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("net"), clock=clock)


@pytest.fixture(autouse=True)
def fresh_clock(clock: Clock) -> Iterator[None]:
    clock.now = datetime.now(UTC)
    yield
    clock.now = datetime.now(UTC)


def past_the_quote(net: LocalNetwork, clock: Clock) -> None:
    clock.now += timedelta(seconds=net.network.gateway.quote_ttl_s + 1)


def inquiry(net: LocalNetwork, request_id: str) -> tuple[str, str]:
    answer = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": request_id}))
    return answer["paymentStatus"], answer["paymentResult"]["resultCode"]


def test_a_replay_after_expiry_closes_instead_of_paying(net: LocalNetwork, clock: Clock) -> None:
    before = net.wallet_book.balance(PAYER.customer_id)
    net.router.down.add(WALLET_AGENT)
    try:
        assert run(net.sdk(PAY_PATH, pay_body("qx-replay", 400)))["result"]["resultStatus"] == "U"
    finally:
        net.router.down.clear()
    past_the_quote(net, clock)
    replay = run(net.sdk(PAY_PATH, pay_body("qx-replay", 400)))
    assert (replay["result"]["resultCode"], replay["result"]["resultStatus"]) == ("FX_QUOTE_EXPIRED", "F")
    assert net.wallet_book.balance(PAYER.customer_id) == before  # never paid at the stale rate
    assert inquiry(net, "qx-replay") == ("FAIL", "FX_QUOTE_EXPIRED")
    # closed at the wallet too: another replay still fails, and nothing is taken
    assert run(net.sdk(PAY_PATH, pay_body("qx-replay", 400)))["result"]["resultCode"] == "FX_QUOTE_EXPIRED"
    assert net.wallet_book.balance(PAYER.customer_id) == before


def test_an_inquiry_after_expiry_gives_back_a_debit(net: LocalNetwork, clock: Clock) -> None:
    before = net.wallet_book.balance(PAYER.customer_id)
    with answers_lost(net.router, WALLET_AGENT, WALLET_PAY_PATH):
        assert run(net.sdk(PAY_PATH, pay_body("qx-lost", 400)))["result"]["resultStatus"] == "U"
    assert net.wallet_book.balance(PAYER.customer_id) < before  # the wallet did debit
    past_the_quote(net, clock)
    assert inquiry(net, "qx-lost") == ("FAIL", "FX_QUOTE_EXPIRED")
    assert net.wallet_book.balance(PAYER.customer_id) == before  # cancelled at the wallet


def test_before_expiry_an_inquiry_still_settles_the_payment(net: LocalNetwork) -> None:
    with answers_lost(net.router, WALLET_AGENT, WALLET_PAY_PATH):
        assert run(net.sdk(PAY_PATH, pay_body("qx-in-time", 400)))["result"]["resultStatus"] == "U"
    assert inquiry(net, "qx-in-time") == ("SUCCESS", "SUCCESS")


def test_a_silent_wallet_after_expiry_leaves_the_payment_u(net: LocalNetwork, clock: Clock) -> None:
    net.router.down.add(WALLET_AGENT)
    try:
        assert run(net.sdk(PAY_PATH, pay_body("qx-silent", 400)))["result"]["resultStatus"] == "U"
        past_the_quote(net, clock)
        assert inquiry(net, "qx-silent") == ("PROCESSING", "PAYMENT_IN_PROCESS")
    finally:
        net.router.down.clear()
    assert inquiry(net, "qx-silent") == ("FAIL", "FX_QUOTE_EXPIRED")


def test_a_close_that_meets_a_late_capture_reverses_it(net: LocalNetwork) -> None:
    """The first pay's answer captured the payment between a replay's read and its close."""
    before = net.wallet_book.balance(PAYER.customer_id)
    paid = run(net.sdk(PAY_PATH, pay_body("qx-late", 400)))
    assert paid["result"]["resultCode"] == "SUCCESS"
    paying = net.gateway_app.state.pay
    stored = paying.store.payment(paid["paymentId"])
    stale = replace(stored, status=PaymentStatus.PROCESSING)  # what the replay read
    closed = asdict(run(paying.close_expired(stale)))
    assert closed["status"] == "CANCELLED"  # as the wallet now has it
    assert net.wallet_book.balance(PAYER.customer_id) == before
    assert inquiry(net, "qx-late")[0] == "CANCELLED"


def test_the_ledger_balances_after_expired_payments(net: LocalNetwork) -> None:
    with engine_of(net.gateway_app).connect() as conn:
        report = ledger.check_ledger(conn)
    assert report.ok, report.problems
