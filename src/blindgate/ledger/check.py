"""Whole-store check of the ledger's invariants (``blindgate ledger check``).

Each rule is one aggregate query, so the check scales with the store, not with Python:

1. every currency sums to zero, in each bucket;
2. every entry sums to zero per currency and bucket;
3. a resolved payment holds nothing pending any more;
4. refunds and cancels never give back more than their payment took;
5. every settlement batch's net equals its ledger movement and its settlement posting.

Problems name entries, payments and batches by id, never a person.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from blindgate.ledger.postings import (
    CANCEL,
    CAPTURE,
    PENDING,
    REFUND,
    SETTLED_TYPES,
    SETTLEMENT,
    VOID,
)
from blindgate.storage.schema import batches, entries, lines


@dataclass
class CheckReport:
    """What the check found: counts, and every problem in words."""

    entries: int = 0
    lines: int = 0
    currencies: dict[str, int] = field(default_factory=dict)  # posted volume (sum of debits) per currency
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_ledger(conn: sa.Connection) -> CheckReport:
    """Run every rule over the whole store."""
    report = CheckReport()
    report.entries = conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one()
    report.lines = conn.execute(sa.select(sa.func.count()).select_from(lines)).scalar_one()
    _currencies_balance(conn, report)
    _entries_balance(conn, report)
    _pending_released(conn, report)
    _reversals_bounded(conn, report)
    _batches_agree(conn, report)
    return report


def _currencies_balance(conn: sa.Connection, report: CheckReport) -> None:
    debit = sa.func.sum(sa.case((lines.c.amount > 0, lines.c.amount), else_=0))
    query = sa.select(lines.c.currency, lines.c.bucket, sa.func.sum(lines.c.amount), debit).group_by(
        lines.c.currency, lines.c.bucket
    )
    for currency, bucket, total, volume in conn.execute(query):
        if bucket == "posted":
            report.currencies[currency] = int(volume)
        if total != 0:
            report.problems.append(f"currency {currency} ({bucket}) sums to {total}, not 0")


def _entries_balance(conn: sa.Connection, report: CheckReport) -> None:
    total = sa.func.sum(lines.c.amount)
    query = (
        sa.select(entries.c.event_key, lines.c.currency, lines.c.bucket, total)
        .join(entries, entries.c.id == lines.c.entry_id)
        .group_by(entries.c.event_key, lines.c.currency, lines.c.bucket)
        .having(total != 0)
    )
    for event_key, currency, bucket, amount in conn.execute(query):
        report.problems.append(f"entry {event_key} is unbalanced in {currency} ({bucket}) by {amount}")


def _pending_released(conn: sa.Connection, report: CheckReport) -> None:
    resolved = sa.select(entries.c.payment_id).where(entries.c.event_type.in_((CAPTURE, VOID)))
    total = sa.func.sum(lines.c.amount)
    query = (
        sa.select(entries.c.payment_id, lines.c.owner, lines.c.kind, lines.c.currency, total)
        .join(entries, entries.c.id == lines.c.entry_id)
        .where(lines.c.bucket == "pending", entries.c.payment_id.in_(resolved))
        .group_by(entries.c.payment_id, lines.c.owner, lines.c.kind, lines.c.currency)
        .having(total != 0)
    )
    for payment_id, _owner, kind, currency, amount in conn.execute(query):
        report.problems.append(
            f"payment {payment_id} is resolved but holds {amount} {currency} pending in {kind}"
        )


def _reversals_bounded(conn: sa.Connection, report: CheckReport) -> None:
    given_back = (
        sa.select(entries.c.payment_id, sa.func.sum(entries.c.amount).label("total"))
        .where(entries.c.event_type.in_((REFUND, CANCEL)))
        .group_by(entries.c.payment_id)
        .subquery()
    )
    query = (
        sa.select(entries.c.payment_id, entries.c.amount, given_back.c.total)
        .join(given_back, given_back.c.payment_id == entries.c.payment_id)
        .where(entries.c.event_type == PENDING, given_back.c.total > entries.c.amount)
    )
    for payment_id, amount, total in conn.execute(query):
        report.problems.append(f"payment {payment_id} gave back {total}, more than its {amount}")


def _batches_agree(conn: sa.Connection, report: CheckReport) -> None:
    """A batch's net = the movement of the partner's account on its day = its settlement posting."""
    for batch in conn.execute(sa.select(batches)).mappings():
        kind, sign = ("wallet_receivable", 1) if batch["role"] == "WALLET" else ("acquirer_payable", -1)
        movement = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(lines.c.amount), 0))
            .join(entries, entries.c.id == lines.c.entry_id)
            .where(
                entries.c.business_date == batch["business_date"],
                entries.c.event_type.in_(SETTLED_TYPES),
                lines.c.owner == batch["partner_id"],
                lines.c.kind == kind,
                lines.c.currency == batch["currency"],
                lines.c.bucket == "posted",
            )
        ).scalar_one()
        moved, net = sign * int(movement), batch["net_amount"]
        if moved != net:
            report.problems.append(f"batch {batch['batch_id']} nets {net} but the ledger moved {moved}")
        settled = conn.execute(
            sa.select(entries.c.amount).where(
                entries.c.event_key == f"settlement:{batch['batch_id']}", entries.c.event_type == SETTLEMENT
            )
        ).scalar_one_or_none()
        if settled != batch["net_amount"]:
            report.problems.append(f"batch {batch['batch_id']} has no settlement posting of its net")
