import pytest

from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, PAY_PATH
from tests.gateway.harness import PAYER, POOR, LocalNetwork, build, pay_body, run


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("net"))


def test_pay_through_both_agents(net: LocalNetwork) -> None:
    before = net.wallet_book.balance(PAYER.customer_id)
    answer = run(net.sdk(PAY_PATH, pay_body("p-ok-1", 1000)))
    assert answer["result"]["resultStatus"] == "S", answer
    assert answer["customerId"] == PAYER.customer_id  # opened by the acquirer's agent
    assert answer["paymentAmount"] == {"currency": "SGD", "value": "1000"}
    assert "paymentQuote" in answer
    debit = before - net.wallet_book.balance(PAYER.customer_id)
    assert debit > 0  # 10.00 SGD in KRW at the shipped rate
    inquiry = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "p-ok-1"}))
    assert inquiry["paymentStatus"] == "SUCCESS" and inquiry["customerId"] == PAYER.customer_id


def test_replay_returns_first_outcome_and_changed_replay_is_inconsistent(net: LocalNetwork) -> None:
    first = run(net.sdk(PAY_PATH, pay_body("p-dup", 500)))
    balance = net.wallet_book.balance(PAYER.customer_id)
    again = run(net.sdk(PAY_PATH, pay_body("p-dup", 500)))
    assert again["paymentId"] == first["paymentId"] and again["result"]["resultCode"] == "SUCCESS"
    assert net.wallet_book.balance(PAYER.customer_id) == balance
    changed = run(net.sdk(PAY_PATH, pay_body("p-dup", 501)))
    assert changed["result"]["resultCode"] == "REPEAT_REQ_INCONSISTENT"
    other_code = run(net.sdk(PAY_PATH, pay_body("p-dup", 500, code=POOR.payment_code)))
    assert other_code["result"]["resultCode"] == "REPEAT_REQ_INCONSISTENT"


def test_decline_is_f_with_the_wallet_code(net: LocalNetwork) -> None:
    answer = run(net.sdk(PAY_PATH, pay_body("p-poor", 100_000, code=POOR.payment_code)))
    assert answer["result"] == {
        "resultCode": "USER_BALANCE_NOT_ENOUGH",
        "resultStatus": "F",
        "resultMessage": answer["result"]["resultMessage"],
    }


def test_cancel_gives_the_money_back(net: LocalNetwork) -> None:
    before = net.wallet_book.balance(PAYER.customer_id)
    assert run(net.sdk(PAY_PATH, pay_body("p-cancel", 700)))["result"]["resultStatus"] == "S"
    cancel = run(net.sdk(CANCEL_PATH, {"paymentRequestId": "p-cancel"}))
    assert cancel["result"]["resultCode"] == "SUCCESS"
    assert net.wallet_book.balance(PAYER.customer_id) == before
    inquiry = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "p-cancel"}))
    assert inquiry["paymentStatus"] == "CANCELLED"


def test_plaintext_mode_runs_the_same_path(tmp_path_factory: pytest.TempPathFactory) -> None:
    plain = build(tmp_path_factory.mktemp("plain"), plaintext=True)
    answer = run(plain.sdk(PAY_PATH, pay_body("plain-1", 1000)))
    assert answer["result"]["resultStatus"] == "S" and answer["customerId"] == PAYER.customer_id
    assert run(plain.sdk(CANCEL_PATH, {"paymentRequestId": "plain-1"}))["result"]["resultCode"] == "SUCCESS"
