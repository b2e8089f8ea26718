import asyncio

import pytest
import sqlalchemy as sa

from blindgate import ledger
from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, INQUIRY_REFUND_PATH, PAY_PATH, REFUND_PATH
from blindgate.gateway.app import engine_of
from tests.gateway.harness import PAYER, LocalNetwork, build, pay_body, run


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("net"), risk={"max_amount": 50_000_000, "max_payments": 1000})


def refund(paid: dict[str, str], refund_id: str, value: int) -> dict[str, object]:
    return {"refundRequestId": refund_id, "paymentId": paid["paymentId"],
            "refundAmount": {"currency": "SGD", "value": str(value)}}  # fmt: skip


def test_partial_and_multiple_refunds_up_to_the_paid_amount(net: LocalNetwork) -> None:
    before = net.wallet_book.balance(PAYER.customer_id)
    paid = run(net.sdk(PAY_PATH, pay_body("r-pay", 1001)))
    assert paid["result"]["resultStatus"] == "S"
    assert run(net.sdk(REFUND_PATH, refund(paid, "r-1", 333)))["result"]["resultCode"] == "SUCCESS"
    assert run(net.sdk(REFUND_PATH, refund(paid, "r-1", 333)))["result"]["resultCode"] == "SUCCESS"  # replay
    assert (
        run(net.sdk(REFUND_PATH, refund(paid, "r-1", 334)))["result"]["resultCode"]
        == "REPEAT_REQ_INCONSISTENT"
    )
    assert (
        run(net.sdk(REFUND_PATH, refund(paid, "r-2", 669)))["result"]["resultCode"] == "REFUND_AMOUNT_EXCEED"
    )
    assert run(net.sdk(REFUND_PATH, refund(paid, "r-3", 668)))["result"]["resultCode"] == "SUCCESS"
    # refunded in full: the payer has exactly what they had (cumulative rounding, no drift)
    assert net.wallet_book.balance(PAYER.customer_id) == before
    inquiry = run(net.sdk(INQUIRY_REFUND_PATH, {"refundRequestId": "r-3"}))
    assert inquiry["refundStatus"] == "SUCCESS"
    assert (
        run(net.sdk(INQUIRY_REFUND_PATH, {"refundRequestId": "r-none"}))["result"]["resultCode"]
        == "ORDER_NOT_EXIST"
    )


def test_racing_refunds_never_overdraw(net: LocalNetwork) -> None:
    paid = run(net.sdk(PAY_PATH, pay_body("r-race", 1000)))

    async def race() -> list[dict[str, object]]:
        return await asyncio.gather(*(net.sdk(REFUND_PATH, refund(paid, f"rr-{i}", 400)) for i in range(4)))

    codes = sorted(a["result"]["resultCode"] for a in run(race()))  # type: ignore[index]
    assert codes == ["REFUND_AMOUNT_EXCEED", "REFUND_AMOUNT_EXCEED", "SUCCESS", "SUCCESS"]


def test_concurrent_duplicates_make_exactly_one_payment(net: LocalNetwork) -> None:
    before = net.wallet_book.balance(PAYER.customer_id)

    async def storm() -> list[dict[str, object]]:
        return await asyncio.gather(*(net.sdk(PAY_PATH, pay_body("dup-storm", 250)) for _ in range(6)))

    answers = run(storm())
    assert len({a["paymentId"] for a in answers}) == 1
    with engine_of(net.gateway_app).connect() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM gw_payments WHERE payment_request_id='dup-storm'"))
        assert count.scalar_one() == 1
    with engine_of(net.gateway_app).connect() as conn:
        wallet_amount = conn.execute(
            sa.text("SELECT wallet_amount FROM gw_payments WHERE payment_request_id='dup-storm'")
        ).scalar_one()
    assert all(a["result"]["resultStatus"] in "SU" for a in answers)  # type: ignore[index]
    assert before - net.wallet_book.balance(PAYER.customer_id) == wallet_amount  # debited exactly once


def test_silent_wallet_leaves_u_then_inquiry_settles(net: LocalNetwork) -> None:
    net.router.down.add("w1-agent.test")
    try:
        answer = run(net.sdk(PAY_PATH, pay_body("u-1", 400)))
        assert answer["result"] == {
            "resultCode": "PAYMENT_IN_PROCESS",
            "resultStatus": "U",
            "resultMessage": answer["result"]["resultMessage"],
        }
        assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "u-1"}))["paymentStatus"] == "PROCESSING"
    finally:
        net.router.down.clear()
    # the wallet never saw it: inquiry finds nothing there and keeps U; a cancel closes it
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "u-1"}))["paymentStatus"] == "PROCESSING"
    assert run(net.sdk(CANCEL_PATH, {"paymentRequestId": "u-1"}))["result"]["resultCode"] == "SUCCESS"
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "u-1"}))["paymentStatus"] == "CANCELLED"
    # a replay of the pay now gets the closed outcome, not a second payment
    assert run(net.sdk(PAY_PATH, pay_body("u-1", 400)))["result"]["resultStatus"] == "F"


def test_silent_wallet_then_replay_completes(net: LocalNetwork) -> None:
    net.router.down.add("w1-agent.test")
    try:
        assert run(net.sdk(PAY_PATH, pay_body("u-2", 400)))["result"]["resultStatus"] == "U"
    finally:
        net.router.down.clear()
    assert run(net.sdk(PAY_PATH, pay_body("u-2", 400)))["result"]["resultStatus"] == "S"


def test_ledger_balances_after_all_that(net: LocalNetwork) -> None:
    with engine_of(net.gateway_app).connect() as conn:
        report = ledger.check_ledger(conn)
    assert report.ok, report.problems
    assert report.entries > 0
