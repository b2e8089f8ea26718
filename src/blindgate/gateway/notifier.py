"""Delivery of payment-result notifications from the outbox, retried with backoff until acknowledged.

A notification is written to ``gw_notifications`` in the same transaction that settles the
payment, so none is lost to a crash. `Notifier.deliver_due` sends each due one to the
acquirer's agent (``agent_url`` + `NOTIFY_AGENT_PATH`, Ed25519-signed); the agent opens the
sealed customerId, signs with the key the acquirer backend trusts, posts it to the
``paymentNotifyUrl`` and answers with the backend's result. Only a SUCCESS acknowledgement
marks it delivered; otherwise the next try waits ``min(2**attempts, MAX_BACKOFF_S)`` seconds,
up to `MAX_ATTEMPTS` tries (then it stays in the outbox, undelivered, for an operator).
Each try first claims its row with a guarded UPDATE, so several gateway workers on one store
never make the same try twice (the acquirer backend also ignores redeliveries).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from blindgate.api.calls import NoAnswer
from blindgate.api.models import NOTIFY_AGENT_PATH
from blindgate.api.network import Network
from blindgate.gateway.calls import PartnerCaller
from blindgate.storage.schema import notifications

log = logging.getLogger("blindgate.gateway.notifier")

MAX_ATTEMPTS = 20
MAX_BACKOFF_S = 300
BATCH = 50
POLL_S = 0.2
# A claimed notification is not due again for this long: longer than one delivery try (10 s).
CLAIM_LEASE_S = 30


class Notifier:
    def __init__(
        self, network: Network, engine: sa.Engine, caller: PartnerCaller, clock: Callable[[], datetime]
    ) -> None:
        self.network, self.engine, self.caller, self.clock = network, engine, caller, clock

    async def deliver_due(self) -> int:
        """Try every due notification once; returns how many were acknowledged."""
        now = self.clock()
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(
                    notifications.c.payment_id,
                    notifications.c.acquirer_id,
                    notifications.c.body,
                    notifications.c.attempts,
                )
                .where(
                    notifications.c.delivered_at.is_(None),
                    notifications.c.next_at <= now,
                    notifications.c.attempts < MAX_ATTEMPTS,
                )
                .order_by(notifications.c.next_at)
                .limit(BATCH)
            ).all()
        claimed = [row for row in due if self._claim(row.payment_id, row.attempts, now)]
        results = await asyncio.gather(*(self._deliver(*row) for row in claimed))
        return sum(results)

    def _claim(self, payment_id: str, attempts: int, now: datetime) -> bool:
        """Take a due notification for one delivery try, atomically: with several gateway workers
        on one store, only the worker whose UPDATE matched delivers it (the others see 0 rows)."""
        lease = now + timedelta(seconds=CLAIM_LEASE_S)
        with self.engine.begin() as conn:
            taken = conn.execute(
                notifications.update()
                .where(
                    notifications.c.payment_id == payment_id,
                    notifications.c.attempts == attempts,
                    notifications.c.delivered_at.is_(None),
                    notifications.c.next_at <= now,
                )
                .values(next_at=lease)
            ).rowcount
        return bool(taken)

    async def _deliver(self, payment_id: str, acquirer_id: str, body: str, attempts: int) -> bool:
        acquirer = self.network.partner(acquirer_id)
        acknowledged = False
        if acquirer is not None:
            try:
                answer = await self.caller.call(acquirer, NOTIFY_AGENT_PATH, json.loads(body), 10.0)
                acknowledged = answer["result"].get("resultCode") == "SUCCESS"
            except NoAnswer:
                pass
        now = self.clock()
        values = (
            {"delivered_at": now, "attempts": attempts + 1}
            if acknowledged
            else {
                "attempts": attempts + 1,
                "next_at": now + timedelta(seconds=min(2**attempts, MAX_BACKOFF_S)),
            }
        )
        with self.engine.begin() as conn:
            conn.execute(
                notifications.update().where(notifications.c.payment_id == payment_id).values(**values)
            )
        if not acknowledged:
            log.info(
                "notification not acknowledged", extra={"payment_id": payment_id, "attempt": attempts + 1}
            )
        return acknowledged

    async def run(self) -> None:
        """Deliver forever (until cancelled), polling the outbox."""
        while True:
            try:
                await self.deliver_due()
            except Exception as exc:  # never let delivery kill the service; the outbox keeps them
                log.error("notification delivery failed: %s", type(exc).__name__)
            await asyncio.sleep(POLL_S)


@contextlib.asynccontextmanager
async def running(*loops: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run each background loop (the notifier's, the order-code sweeper's) while the block runs."""
    tasks = [asyncio.create_task(loop()) for loop in loops]
    try:
        yield None
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
