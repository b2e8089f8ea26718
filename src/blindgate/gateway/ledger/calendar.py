"""Business days: a daily cut-off in a configured time zone.

Business day D runs from ``cutoff`` local time on calendar day D to ``cutoff`` on D+1 in
``zone``; with the default cut-off 00:00 it is simply the calendar day in that zone. Once a
day is closed (``ledger_days``), later events that belong to it land in the next open day,
so a closed batch never changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from blindgate.gateway.ledger.errors import BusinessDayOpen
from blindgate.gateway.ledger.schema import days


@dataclass(frozen=True)
class Cutoff:
    """When a business day ends: ``at`` local time in ``zone`` (an IANA name)."""

    zone: str = "UTC"
    at: time = field(default_factory=lambda: time(0))

    def day_of(self, moment: datetime) -> date:
        """The business day a (time-zone aware) moment belongs to, ignoring closures."""
        if moment.tzinfo is None:
            raise ValueError("times given to the ledger must be time-zone aware")
        local = moment.astimezone(ZoneInfo(self.zone)).replace(tzinfo=None)
        shift = timedelta(hours=self.at.hour, minutes=self.at.minute, seconds=self.at.second)
        return (local - shift).date()

    def end_of(self, day: date) -> datetime:
        """The aware UTC moment business day ``day`` closes."""
        local_end = datetime.combine(day + timedelta(days=1), self.at, tzinfo=ZoneInfo(self.zone))
        return local_end.astimezone(UTC)


def last_closed_day(conn: sa.Connection, *, lock: bool = False) -> date | None:
    """The latest closed business day.

    ``lock``: on PostgreSQL, hold ``ledger_days`` in SHARE mode until this transaction ends.
    Postings share that lock; closing a day inserts a row, which waits for every posting in
    flight and holds new ones back until it commits, so no posting can land in a day that was
    closed after it looked. (SQLite serialises writers and fails a stale writer instead.)
    """
    if lock and conn.dialect.name == "postgresql":
        conn.execute(sa.text("LOCK TABLE ledger_days IN SHARE MODE"))
    query = sa.select(days.c.business_date).order_by(days.c.business_date.desc()).limit(1)
    return conn.execute(query).scalar_one_or_none()


def business_day(conn: sa.Connection, cutoff: Cutoff, moment: datetime) -> date:
    """The open business day an event at ``moment`` posts into."""
    day = cutoff.day_of(moment)
    closed = last_closed_day(conn, lock=True)
    if closed is not None and day <= closed:
        return closed + timedelta(days=1)
    return day


def is_closed(conn: sa.Connection, day: date) -> bool:
    """Whether business day ``day`` is closed (recorded in ``ledger_days``)."""
    closed = last_closed_day(conn)
    return closed is not None and day <= closed


def close_business_day(conn: sa.Connection, cutoff: Cutoff, day: date, now: datetime) -> bool:
    """Close business day ``day`` (and so every day before it). False if it was already closed.

    ``now`` is the closing party's clock (the demo's may run ahead of the wall clock); a day
    can only close once its cut-off has passed by that clock.
    """
    if now < cutoff.end_of(day):
        raise BusinessDayOpen(f"business day {day.isoformat()} runs until {cutoff.end_of(day).isoformat()}")
    if is_closed(conn, day):
        return False
    conn.execute(sa.insert(days).values(business_date=day, closed_at=now.astimezone(UTC)))
    return True
