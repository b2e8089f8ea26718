"""The event loop never waits on the database (`blindgate.storage.offload`).

Another connection holds a lock the gateway's next write needs — an operator's session, a day
being closed. That write waits on a store thread; meanwhile the gateway goes on answering
``/health`` and every request that needs no locked row, and the wait itself ends at the store
timeout (a U answer, nothing half-written) rather than never. Played on SQLite (a write
transaction holds the file) and on PostgreSQL (one payment's row is locked).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, PAY_PATH
from blindgate.storage.schema import cancel_holds, payments
from tests.gateway.harness import LocalNetwork, build, pay_body, run

# Long enough for everything the test does while the lock is held; the lock is given back
# first, so nothing in the SQLite test ever waits this long.
LOCK_WAIT_S = 0.3


async def health(net: LocalNetwork) -> int:
    async with httpx.AsyncClient(transport=net.router) as client:
        return (await client.get("http://gateway.test/health")).status_code


async def inquire(net: LocalNetwork, request_id: str) -> dict[str, Any]:
    return await net.sdk(INQUIRY_PATH, {"paymentRequestId": request_id})


def test_sqlite_locked_by_another_connection_stops_no_request_that_does_not_write(tmp_path: Path) -> None:
    net = build(tmp_path, store_timeout_s=10.0)
    assert run(net.sdk(PAY_PATH, pay_body("before-lock", 500)))["result"]["resultStatus"] == "S"

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int, bool]:
        blocker = sqlite3.connect(tmp_path / "gateway.db", timeout=0, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another connection's write transaction holds the file
        try:
            paying = asyncio.ensure_future(net.sdk(PAY_PATH, pay_body("during-lock", 500)))
            await asyncio.sleep(LOCK_WAIT_S)  # the pay is now waiting for the file
            answered = await inquire(net, "before-lock"), await health(net)
            still_waiting = not paying.done()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return answered[0], await paying, answered[1], still_waiting

    inquiry, paid, health_status, pay_was_waiting = run(scenario())
    assert pay_was_waiting  # the answers below came while the pay waited on the lock
    assert health_status == 200
    assert (inquiry["result"]["resultStatus"], inquiry["paymentStatus"]) == ("S", "SUCCESS")
    assert paid["result"]["resultStatus"] == "S"  # the lock given back, the pay went through


@pytest.mark.postgres
def test_postgresql_row_lock_holds_only_its_payment_and_times_out(tmp_path: Path, pg_schema_url: str) -> None:
    net = build(tmp_path, database_url=pg_schema_url, store_timeout_s=1.0)
    locked = run(net.sdk(PAY_PATH, pay_body("locked-row", 500)))
    assert locked["result"]["resultStatus"] == "S"
    engine = sa.create_engine(pg_schema_url)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], int, bool]:
        cancelling = asyncio.ensure_future(net.sdk(CANCEL_PATH, {"paymentRequestId": "locked-row"}))
        await asyncio.sleep(LOCK_WAIT_S)  # the cancel is now waiting for the payment's row
        other, status = await net.sdk(PAY_PATH, pay_body("other-payer-row", 500)), await health(net)
        still_waiting = not cancelling.done()
        return await cancelling, other, status, still_waiting

    try:
        with engine.connect() as conn, conn.begin():
            where = payments.c.payment_id == locked["paymentId"]
            # An operator's session locks the payment's row.
            conn.execute(sa.select(payments.c.payment_id).where(where).with_for_update())
            cancel, other, health_status, cancel_was_waiting = run(scenario())
        with engine.connect() as conn:
            status = conn.execute(sa.select(payments.c.status).where(where)).scalar_one()
            holds = conn.execute(sa.select(sa.func.count()).select_from(cancel_holds)).scalar_one()
    finally:
        engine.dispose()
    assert cancel_was_waiting and health_status == 200
    assert other["result"]["resultStatus"] == "S"  # another payment's rows were free
    # The cancel's wait ended at the store timeout: U (cancel again), and nothing half-done.
    assert cancel["result"]["resultStatus"] == "U"
    assert (status, holds) == ("SUCCESS", 0)
    again = run(net.sdk(CANCEL_PATH, {"paymentRequestId": "locked-row"}))
    assert again["result"]["resultStatus"] == "S"
