"""The storage-dependent behaviour again on PostgreSQL: idempotency, racing refunds, U then cancel."""

import asyncio
import uuid
from pathlib import Path

import pytest

from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, PAY_PATH, REFUND_PATH
from tests.gateway.harness import PAYER, build, pay_body, run

pytestmark = pytest.mark.postgres


def test_payment_path_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    net = build(tmp_path, database_url=postgres_url)
    run_id = uuid.uuid4().hex[:12]  # the database outlives the test: fresh ids each run
    before = net.wallet_book.balance(PAYER.customer_id)

    async def storm() -> list[dict[str, object]]:
        return await asyncio.gather(*(net.sdk(PAY_PATH, pay_body(f"pg-{run_id}", 800)) for _ in range(4)))

    answers = run(storm())
    assert len({a["paymentId"] for a in answers}) == 1
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": f"pg-{run_id}"}))["paymentStatus"] == "SUCCESS"
    payment_id = answers[0]["paymentId"]

    async def refunds() -> list[dict[str, object]]:
        return await asyncio.gather(
            *(
                net.sdk(
                    REFUND_PATH,
                    {
                        "refundRequestId": f"pgr-{run_id}-{i}",
                        "paymentId": payment_id,
                        "refundAmount": {"currency": "SGD", "value": "500"},
                    },
                )
                for i in range(3)
            )
        )

    codes = sorted(a["result"]["resultCode"] for a in run(refunds()))  # type: ignore[index]
    assert codes == ["REFUND_AMOUNT_EXCEED", "REFUND_AMOUNT_EXCEED", "SUCCESS"]
    assert (
        run(net.sdk(CANCEL_PATH, {"paymentRequestId": f"pg-{run_id}"}))["result"]["resultCode"] == "SUCCESS"
    )
    assert net.wallet_book.balance(PAYER.customer_id) == before
