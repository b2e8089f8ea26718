"""The storage-dependent behaviour again on PostgreSQL: idempotency, racing refunds, U then cancel."""

import asyncio
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, PAY_PATH, REFUND_PATH
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import create_gateway_app
from blindgate.storage import open_engine
from blindgate.storage.schema import entries, payments
from tests.gateway.harness import PAYER, build, pay_body, run

pytestmark = pytest.mark.postgres


def test_payment_path_on_postgres(tmp_path: Path, pg_schema_url: str) -> None:
    net = build(tmp_path, database_url=pg_schema_url)
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


class TakeTurns:
    """A load balancer in front of gateway instances: each request goes to the next one."""

    def __init__(self, *apps: Any) -> None:
        self.apps, self.served = apps, [0] * len(apps)
        self._next = itertools.count()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        index = next(self._next) % len(self.apps)
        if scope["type"] == "http":
            self.served[index] += 1
        await self.apps[index](scope, receive, send)


def test_duplicates_on_two_gateway_instances_make_one_payment(tmp_path: Path, pg_schema_url: str) -> None:
    net = build(tmp_path, database_url=pg_schema_url)
    # A second gateway over the same database: its own engine and pool, no memory shared but PostgreSQL.
    second = create_gateway_app(
        net.network, KeyStore(tmp_path / "gateway-keys"), pg_schema_url, transport=net.router, notify=False
    )
    balancer = TakeTurns(net.gateway_app, second)
    net.router.add("gateway.test", balancer)
    request_id = f"pg2-{uuid.uuid4().hex[:12]}"
    before = net.wallet_book.balance(PAYER.customer_id)

    async def storm() -> list[dict[str, Any]]:
        return await asyncio.gather(*(net.sdk(PAY_PATH, pay_body(request_id, 900)) for _ in range(6)))

    answers = run(storm())
    assert all(balancer.served), balancer.served  # both instances took duplicates
    assert {a["result"]["resultStatus"] for a in answers} <= {"S", "U"}
    payment_ids = {a["paymentId"] for a in answers if "paymentId" in a}
    assert len(payment_ids) == 1, answers
    payment_id = payment_ids.pop()
    engine = open_engine(pg_schema_url)
    try:
        with engine.connect() as conn:
            made = (
                conn.execute(
                    sa.select(payments.c.wallet_amount).where(payments.c.payment_request_id == request_id)
                )
                .scalars()
                .all()
            )
            posted = conn.execute(
                sa.select(entries.c.event_key).where(entries.c.payment_id == payment_id)
            ).scalars()
            keys = sorted(posted)
    finally:
        engine.dispose()
    assert len(made) == 1
    assert keys == [f"payment:{payment_id}", f"resolve:{payment_id}"]  # one pending, one capture
    assert before - net.wallet_book.balance(PAYER.customer_id) == made[0]  # the payer was debited once
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": request_id}))["paymentStatus"] == "SUCCESS"
