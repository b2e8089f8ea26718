"""Delivery of payment-result notifications from the outbox, retried with backoff until acknowledged.

A notification is written to ``gw_notifications`` in the same transaction that settles the
payment, so none is lost to a crash. `Notifier.deliver_due` sends each due one to the
acquirer's agent (``agent_url`` + `NOTIFY_AGENT_PATH`, Ed25519-signed); the agent opens the
sealed customerId, signs with the key the acquirer backend trusts, posts it to the
``paymentNotifyUrl`` and answers with the backend's result. Only a SUCCESS acknowledgement
marks it delivered; otherwise the next try waits ``min(2**attempts, MAX_BACKOFF_S)`` seconds,
up to `MAX_ATTEMPTS` tries (then it stays in the outbox, undelivered, for an operator): its
state (`repository.NotificationState`) is DUE, DELIVERED or GIVEN_UP. The outbox's SQL is the
repository's (`Repository.due_notifications`, `claim_notification`, `record_try`).
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

from blindgate.api.calls import NoAnswer
from blindgate.api.models import NOTIFY_AGENT_PATH
from blindgate.api.network import Network
from blindgate.gateway.calls import PartnerCaller
from blindgate.gateway.repository import Notification, NotificationState, Repository
from blindgate.storage.offload import Offload

log = logging.getLogger("blindgate.gateway.notifier")

MAX_ATTEMPTS = 20
MAX_BACKOFF_S = 300
BATCH = 50
POLL_S = 0.2
# A claimed notification is not due again for this long: longer than one delivery try (10 s).
CLAIM_LEASE_S = 30


class Notifier:
    def __init__(
        self, network: Network, db: Offload, caller: PartnerCaller, clock: Callable[[], datetime]
    ) -> None:
        self.network, self.db, self.caller, self.clock = network, db, caller, clock
        self.store = Repository(db.engine)

    async def deliver_due(self) -> int:
        """Try every due notification once; returns how many were acknowledged."""
        now = self.clock()
        claimed = await self.db.run(self._claim_due, now)
        states = await asyncio.gather(*(self._deliver(notice) for notice in claimed))
        return sum(state == NotificationState.DELIVERED for state in states)

    def _claim_due(self, now: datetime) -> list[Notification]:
        due = self.store.due_notifications(now, MAX_ATTEMPTS, BATCH)
        lease = now + timedelta(seconds=CLAIM_LEASE_S)
        return [notice for notice in due if self.store.claim_notification(notice, now, lease)]

    async def _deliver(self, notice: Notification) -> NotificationState:
        acquirer = self.network.partner(notice.acquirer_id)
        acknowledged = False
        if acquirer is not None:
            try:
                answer = await self.caller.call(acquirer, NOTIFY_AGENT_PATH, json.loads(notice.body), 10.0)
                acknowledged = answer["result"].get("resultCode") == "SUCCESS"
            except NoAnswer:
                pass
        now, tries = self.clock(), notice.attempts + 1
        if acknowledged:
            state = NotificationState.DELIVERED
        else:
            state = NotificationState.GIVEN_UP if tries >= MAX_ATTEMPTS else NotificationState.DUE
        retry_at = now + timedelta(seconds=min(2**notice.attempts, MAX_BACKOFF_S))
        await self.db.run(self.store.record_try, notice, state, now, retry_at)
        facts = {"payment_id": notice.payment_id, "attempt": tries}
        if state == NotificationState.DUE:
            log.info("notification not acknowledged", extra=facts)
        elif state == NotificationState.GIVEN_UP:
            log.warning("notification not acknowledged: given up, left in the outbox", extra=facts)
        return state

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
