"""Settlement batches: one per partner per currency per closed business day.

Every settled event (PAYMENT = a capture, REFUND, CANCEL) of the day gives each of its two
partners one item in that partner's settlement currency, from the partner's side:

- the acquirer, in the payment's currency: gross ``amount``, fee ``acquirer_fee`` (the
  merchant discount), net ``amount - acquirer_fee``: what the gateway pays it;
- the wallet, in its own currency: gross ``wallet_amount``, fee ``wallet_fee`` (its share),
  net ``wallet_amount - wallet_fee``: what it pays the gateway.

PAYMENT items are positive, REFUND and CANCEL items negative. A batch's net is the sum of
its items; ``settle_day`` asserts that this equals the movement of the partner's ledger
account for the day (files and ledger agree), then records the batch and posts its
settlement (idempotent by batch id). The totals are SQL aggregates, so a day of a million
payments costs one grouped scan, not a million Python rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from blindgate.ledger.calendar import Cutoff, close_business_day, is_closed
from blindgate.ledger.errors import BusinessDayOpen, LedgerInvariantBroken
from blindgate.ledger.postings import CAPTURE, SETTLED_TYPES, post_settlement
from blindgate.storage.schema import batches, entries, lines

# The file's name for each settled event type.
TYPE_NAMES = {CAPTURE: "PAYMENT", "REFUND": "REFUND", "CANCEL": "CANCEL"}
ROLES = ("ACQUIRER", "WALLET")


@dataclass(frozen=True)
class Totals:
    count: int = 0
    gross: int = 0
    fee: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.fee

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.count + other.count, self.gross + other.gross, self.fee + other.fee)


@dataclass(frozen=True)
class Batch:
    """A partner's settlement for one currency and business day."""

    batch_id: str
    business_date: date
    partner_id: str
    role: str
    currency: str
    by_type: dict[str, Totals] = field(default_factory=dict)  # PAYMENT/REFUND/CANCEL

    @property
    def total(self) -> Totals:
        return sum(self.by_type.values(), Totals())

    @property
    def net_amount(self) -> int:
        return self.total.net


def _side_columns(role: str) -> tuple[Any, Any, Any, Any]:
    """(partner, currency, gross, fee) columns of ``entries`` for one side."""
    if role == "ACQUIRER":
        return entries.c.acquirer_id, entries.c.currency, entries.c.amount, entries.c.acquirer_fee
    return entries.c.wallet_id, entries.c.wallet_currency, entries.c.wallet_amount, entries.c.wallet_fee


def _day_entries(day: date) -> Any:
    return sa.and_(entries.c.business_date == day, entries.c.event_type.in_(SETTLED_TYPES))


def compute_batches(conn: sa.Connection, day: date) -> list[Batch]:
    """The day's batches from its entries (not yet recorded), in a stable order."""
    grouped: dict[tuple[str, str, str], dict[str, Totals]] = {}
    for role in ROLES:
        partner, currency, gross, fee = _side_columns(role)
        query = (
            sa.select(
                partner, currency, entries.c.event_type, sa.func.count(), sa.func.sum(gross), sa.func.sum(fee)
            )
            .where(_day_entries(day))
            .group_by(partner, currency, entries.c.event_type)
        )
        for partner_id, currency_code, event_type, count, gross_sum, fee_sum in conn.execute(query):
            sign = 1 if event_type == CAPTURE else -1
            totals = Totals(int(count), sign * int(gross_sum), sign * int(fee_sum))
            grouped.setdefault((role, partner_id, currency_code), {})[TYPE_NAMES[event_type]] = totals
    found = []
    for index, (role, partner_id, currency_code) in enumerate(sorted(grouped), start=1):
        found.append(
            Batch(
                f"B{day:%Y%m%d}{index:04d}",
                day,
                partner_id,
                role,
                currency_code,
                grouped[(role, partner_id, currency_code)],
            )
        )
    return found


def ledger_movement(conn: sa.Connection, batch: Batch) -> int:
    """The movement of the partner's account for the batch's day, from the partner's side."""
    kind, sign = ("wallet_receivable", 1) if batch.role == "WALLET" else ("acquirer_payable", -1)
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(lines.c.amount), 0))
        .join(entries, entries.c.id == lines.c.entry_id)
        .where(
            _day_entries(batch.business_date),
            lines.c.owner == batch.partner_id,
            lines.c.kind == kind,
            lines.c.currency == batch.currency,
            lines.c.bucket == "posted",
        )
    ).scalar_one()
    return sign * int(total)


def recorded_batches(conn: sa.Connection, day: date) -> list[Batch]:
    """The batches already settled for ``day`` (recomputed per type from the same entries)."""
    stored = {
        row.batch_id: row for row in conn.execute(sa.select(batches).where(batches.c.business_date == day))
    }
    if not stored:
        return []
    by_key = {(b.role, b.partner_id, b.currency): b for b in compute_batches(conn, day)}
    found = []
    for batch_id, row in sorted(stored.items()):
        fresh = by_key.get((row.role, row.partner_id, row.currency))
        if fresh is None or fresh.net_amount != row.net_amount:
            raise LedgerInvariantBroken(f"batch {batch_id} no longer matches its day's entries")
        found.append(Batch(batch_id, day, row.partner_id, row.role, row.currency, fresh.by_type))
    return found


def settle_day(conn: sa.Connection, day: date, *, now: datetime, cutoff: Cutoff | None = None) -> list[Batch]:
    """Close (if its cut-off has passed by ``now``) and settle business day ``day`` in the
    caller's one transaction; idempotent. `settle` does the same in short steps, which a
    serving gateway's payments do not wait for: use it on a live store.

    Raises ``BusinessDayOpen`` for a day still open, before writing anything.
    """
    _close_if_due(conn, day, now, cutoff)
    return recorded_batches(conn, day) or _record(conn, checked_batches(conn, day), day, now)


def settle(engine: sa.Engine, day: date, *, now: datetime, cutoff: Cutoff | None = None) -> list[Batch]:
    """`settle_day` in three steps, so that live payments are held back only while the day closes.

    1. Close the day, in a transaction of its own: on PostgreSQL it waits for the postings in
       flight and holds new ones back only until it commits (`close_business_day`); on SQLite
       it holds the write lock for one small INSERT.
    2. Total and check the batches, outside any write transaction: once closed, a day takes no
       new entry (a posting goes to the next open day, `calendar.open_day_sql`), so its totals
       are final and the long scan holds nothing a payment needs.
    3. Record the batches and post their settlements, in a short transaction; a settlement that
       ran meanwhile wins (its batches are answered, as on a repeat).
    """
    with engine.begin() as conn:
        _close_if_due(conn, day, now, cutoff)
    with engine.connect() as conn:
        found = recorded_batches(conn, day) or checked_batches(conn, day)
    try:
        with engine.begin() as conn:
            return recorded_batches(conn, day) or _record(conn, found, day, now)
    except sa.exc.IntegrityError:  # a racing settlement recorded the same batch ids first
        with engine.connect() as conn:
            return recorded_batches(conn, day)


def _close_if_due(conn: sa.Connection, day: date, now: datetime, cutoff: Cutoff | None) -> None:
    if not is_closed(conn, day):
        if cutoff is None or now < cutoff.end_of(day):
            raise BusinessDayOpen(f"business day {day.isoformat()} is still open: it cannot be settled yet")
        close_business_day(conn, cutoff, day, now)


def checked_batches(conn: sa.Connection, day: date) -> list[Batch]:
    """The closed day's batches, each checked against its partner's ledger movement."""
    found = compute_batches(conn, day)
    for batch in found:
        moved = ledger_movement(conn, batch)
        if moved != batch.net_amount:
            raise LedgerInvariantBroken(
                f"batch {batch.batch_id} nets {batch.net_amount}, the ledger moved {moved}"
            )
    return found


def _record(conn: sa.Connection, found: list[Batch], day: date, now: datetime) -> list[Batch]:
    """Record each batch and post its settlement (idempotent by batch id)."""
    for batch in found:
        conn.execute(
            sa.insert(batches).values(
                batch_id=batch.batch_id,
                business_date=day,
                partner_id=batch.partner_id,
                role=batch.role,
                currency=batch.currency,
                transaction_count=batch.total.count,
                net_amount=batch.net_amount,
            )
        )
        post_settlement(
            conn,
            batch_id=batch.batch_id,
            partner_id=batch.partner_id,
            role=batch.role,
            currency=batch.currency,
            net_amount=batch.net_amount,
            business_date=day,
            at=now,
        )
    return found


def day_items(conn: sa.Connection, day: date, *, chunk: int = 20_000) -> Iterator[sa.RowMapping]:
    """The day's settled entries, streamed in id order (for the transaction detail files)."""
    query = sa.select(entries).where(_day_entries(day)).order_by(entries.c.id)
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(query)
    for row in result:
        yield row._mapping
