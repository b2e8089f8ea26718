"""Retention: the gateway forgets what it kept only to serve a payment's lifecycle, once it ends.

What goes (per payment): ``gw_payments.pseudonym`` and ``customer_sealed`` (set to NULL), the
payment's ``gw_notifications`` row (its body holds the sealed customerId), and the
``gw_risk_payers`` row of its (wallet, pseudonym). What stays: every id, amount, currency,
status, result code and time of the payment and its refunds, ``wallet_payment_id`` (the
wallet's id of the same payment, for reconciling with it), and the whole ledger and its
settlement batches, which hold no payer data: ``blindgate ledger check`` and reconciliation
work on a purged store exactly as before.

When a payment's lifecycle ends (`Retention`, from the network file):

- a successful payment: when its refund window closes, ``refund_window_days`` after it was
  made (the gateway refuses later refunds with REFUND_WINDOW_EXCEED, so nothing after that
  needs what is purged);
- a failed or cancelled one: at once (nothing more can happen to it);
- a payment still in process (U): never, until it is resolved.

Its lifecycle data is then kept ``retention_days`` more (inquiries, disputes) and purged once,
in addition, every ledger posting of the payment (capture, refunds, cancel) lies in a closed
business day — its settlement is final — and no refund or cancel of it is in process.

How: `purge_batch` picks at most ``batch`` such payments that still hold something to purge
and purges them in one short transaction; a crash leaves each batch wholly done or wholly
not, and a second run finds nothing left (a no-op). `purge` runs batches until none is left
(``blindgate db purge``); `Purger` is the gateway's periodic job (a bounded number of batches
per run, each its own transaction on the gateway's store threads, so payments never wait long
behind it).

What it leaks, and what it does not do: a purged row still shows when, how much, between which
partners and with which result — the ledger needs all of it. Rows are cleared with UPDATE and
DELETE: the database's own free pages, write-ahead log and backups keep old bytes until they
are reused or expire (PostgreSQL's VACUUM, SQLite's ``secure_delete`` pragma and the backup
policy are the operator's part: docs/privacy.md).

The payment and refund statuses are the strings the gateway stores (`gateway.repository`'s
enums; a test keeps the two in step): the store cannot import the gateway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from blindgate.storage.offload import Offload
from blindgate.storage.schema import (
    cancel_holds,
    days,
    entries,
    notifications,
    payments,
    refunds,
    risk_payers,
)

log = logging.getLogger("blindgate.storage.retention")

SUCCESS, FAIL, CANCELLED = "SUCCESS", "FAIL", "CANCELLED"  # gw_payments.status (PROCESSING: never)
REFUND_PROCESSING = "PROCESSING"  # gw_refunds.status of a refund still asked of the wallet
MAX_BATCHES_PER_RUN = 20  # the periodic job's bound per run: 20 short transactions, then it sleeps


class Retention(Protocol):
    """The windows, as the network file states them (`blindgate.api.network.Retention`)."""

    @property
    def refund_window(self) -> timedelta: ...

    @property
    def retention(self) -> timedelta: ...

    @property
    def purge_batch(self) -> int: ...

    @property
    def purge_every_s(self) -> int: ...


@dataclass(frozen=True)
class PurgeReport:
    purged: int  # payments whose lifecycle data was purged
    batches: int  # transactions that purged something


def purge_batch(engine: sa.Engine, retention: Retention, now: datetime, batch: int) -> int:
    """Purge at most ``batch`` payments past retention, in one transaction; how many it purged."""
    assert batch >= 1
    with engine.begin() as conn:
        closed = conn.execute(sa.select(sa.func.max(days.c.business_date))).scalar_one_or_none()
        if closed is None:
            return 0  # nothing is settled yet
        due = conn.execute(_due(retention, now, closed).limit(batch)).all()
        if not due:
            return 0
        ids = [row.payment_id for row in due]
        conn.execute(
            payments.update()
            .where(payments.c.payment_id.in_(ids))
            .values(pseudonym=None, customer_sealed=None)
        )
        conn.execute(notifications.delete().where(notifications.c.payment_id.in_(ids)))
        payers = {(row.wallet_id, row.pseudonym) for row in due if row.pseudonym is not None}
        for wallet_id, pseudonym in sorted(payers):
            conn.execute(
                risk_payers.delete().where(
                    risk_payers.c.wallet_id == wallet_id, risk_payers.c.pseudonym == pseudonym
                )
            )
    return len(due)


def purge(
    engine: sa.Engine, retention: Retention, now: datetime, max_batches: int | None = None
) -> PurgeReport:
    """Purge batch after batch until none is due (or ``max_batches`` have run)."""
    purged = batches = 0
    while max_batches is None or batches < max_batches:
        count = purge_batch(engine, retention, now, retention.purge_batch)
        if not count:
            break
        purged, batches = purged + count, batches + 1
        if count < retention.purge_batch:
            break
    return PurgeReport(purged, batches)


def _due(retention: Retention, now: datetime, closed: date) -> sa.CompoundSelect:
    """Payments whose lifecycle has ended, ``retention_days`` ago, settled, with something left.

    Two searches: the payments still holding payer data, through their partial index by age
    (`storage.schema`'s ``ix_gw_payments_payer_data``: it never walks rows purged before), and
    those with a notification left in the outbox (a small table)."""
    kept_until = now - retention.retention
    ended = sa.or_(
        sa.and_(payments.c.status == SUCCESS, payments.c.created_at < kept_until - retention.refund_window),
        sa.and_(payments.c.status.in_((FAIL, CANCELLED)), payments.c.created_at < kept_until),
    )
    unsettled = sa.exists().where(
        entries.c.payment_id == payments.c.payment_id, entries.c.business_date > closed
    )
    refund_open = sa.exists().where(
        refunds.c.payment_id == payments.c.payment_id, refunds.c.status == REFUND_PROCESSING
    )
    cancel_open = sa.exists().where(cancel_holds.c.payment_id == payments.c.payment_id)
    purgeable = (ended, ~unsettled, ~refund_open, ~cancel_open)
    columns = (payments.c.payment_id, payments.c.wallet_id, payments.c.pseudonym)
    holding_payer_data = sa.or_(payments.c.pseudonym.is_not(None), payments.c.customer_sealed.is_not(None))
    holding = sa.select(*columns).where(holding_payer_data, payments.c.created_at < kept_until, *purgeable)
    notified = sa.select(*columns).where(
        payments.c.payment_id.in_(sa.select(notifications.c.payment_id)), *purgeable
    )
    return sa.union(holding, notified)


class Purger:
    """The gateway's periodic purge: every ``purge_every_s``, at most `MAX_BATCHES_PER_RUN` batches.

    Each batch is its own short transaction, run on the gateway's store threads (`Offload`,
    whose statements the engine's lock timeout bounds): the event loop keeps serving payments.
    """

    def __init__(self, db: Offload, retention: Retention, clock: Callable[[], datetime]) -> None:
        self.db, self.retention, self.clock = db, retention, clock

    async def run_once(self) -> PurgeReport:
        purged = batches = 0
        while batches < MAX_BATCHES_PER_RUN:
            # Off the event loop: the search for due payments reads without a write lock (a
            # scan on a large store); only the batch's UPDATE and DELETEs hold one, briefly.
            count = await self.db.run(
                purge_batch, self.db.engine, self.retention, self.clock(), self.retention.purge_batch
            )
            if not count:
                break
            purged, batches = purged + count, batches + 1
            if count < self.retention.purge_batch:
                break
        if purged:
            log.info("retention purge", extra={"purged": purged, "batches": batches})
        return PurgeReport(purged, batches)

    async def run(self) -> None:
        """`run_once` forever (until cancelled), every ``purge_every_s`` seconds."""
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # never let the purge kill the service; the next run retries
                log.error("retention purge failed: %s", type(exc).__name__)
            await asyncio.sleep(self.retention.purge_every_s)
