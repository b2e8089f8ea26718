from pathlib import Path

import sqlalchemy as sa

from blindgate.api.models import PAY_PATH
from blindgate.gateway.app import engine_of
from tests.gateway.harness import PAYER, build, pay_body, run


def test_per_pseudonym_velocity_and_amount_limits(tmp_path: Path) -> None:
    net = build(tmp_path, risk={"max_amount": 200_000, "window_s": 60, "max_payments": 2})
    assert run(net.sdk(PAY_PATH, pay_body("k-1", 100)))["result"]["resultCode"] == "SUCCESS"
    assert run(net.sdk(PAY_PATH, pay_body("k-2", 100)))["result"]["resultCode"] == "SUCCESS"
    before = net.wallet_book.balance(PAYER.customer_id)
    third = run(net.sdk(PAY_PATH, pay_body("k-3", 100)))
    assert third["result"] == {
        "resultCode": "RISK_REJECT",
        "resultStatus": "F",
        "resultMessage": third["result"]["resultMessage"],
    }
    assert net.wallet_book.balance(PAYER.customer_id) == before  # cancelled at the wallet: nothing taken
    too_big = run(net.sdk(PAY_PATH, pay_body("k-4", 50_000)))  # 500 SGD is far above 200,000 KRW
    assert too_big["result"]["resultCode"] == "PAYMENT_AMOUNT_EXCEED_LIMIT"
    with engine_of(net.gateway_app).connect() as conn:
        pseudonyms = conn.execute(sa.text("SELECT DISTINCT pseudonym FROM gw_payments")).scalars().all()
    assert len(pseudonyms) == 1 and str(pseudonyms[0]).startswith("ps_")
    assert PAYER.customer_id not in str(pseudonyms[0])
