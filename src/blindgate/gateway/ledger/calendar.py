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


def last_closed_day(conn: sa.Connection) -> date | None:
    """The latest closed business day."""
    query = sa.select(days.c.business_date).order_by(days.c.business_date.desc()).limit(1)
    return conn.execute(query).scalar_one_or_none()


_LOCK = sa.text("LOCK TABLE ledger_days IN SHARE MODE")
# conn.info key: the transaction (or savepoint) in which the calendar lock was last taken.
_LOCKED_IN = "blindgate.ledger.calendar_locked_in"


def lock_calendar(conn: sa.Connection) -> None:
    """On PostgreSQL, hold ``ledger_days`` in SHARE mode until this transaction ends.

    Postings share that lock; closing a day inserts a row, which waits for every posting in
    flight and holds new ones back until it commits, so no posting can land in a day that was
    closed after it looked. (SQLite has a single writer: a posting's INSERT and everything
    after it in its transaction run under the write lock, which a close needs too.)

    Taken once per transaction: a lock taken inside a savepoint that rolls back is released,
    so the memo names the innermost transaction it was taken in.
    """
    if conn.dialect.name != "postgresql":
        return
    current = conn.get_nested_transaction() or conn.get_transaction()
    if current is not None and conn.info.get(_LOCKED_IN) is current:
        return
    conn.execute(_LOCK)
    conn.info[_LOCKED_IN] = conn.get_nested_transaction() or conn.get_transaction()


def open_day_sql(dialect: str, day: sa.BindParameter[date]) -> sa.ColumnElement[date]:
    """SQL for the open business day an event of (calendar-rule) day ``day`` posts into: ``day``,
    or the day after the last closed one if ``day`` is closed.

    Evaluated by the store inside the posting's own INSERT, so no SELECT is needed and no
    cached answer can go stale: under the calendar lock (PostgreSQL) or the write lock
    (SQLite) no close can commit between this reading of ``ledger_days`` and the commit.
    """
    latest_closed = sa.select(sa.func.max(days.c.business_date)).scalar_subquery()
    if dialect == "postgresql":  # GREATEST skips NULL (no closed day); date + integer is a date
        return sa.func.greatest(day, latest_closed + sa.literal_column("1"), type_=sa.Date)
    # SQLite keeps dates as ISO text, which orders like the dates; its max() of a NULL is NULL.
    next_open = sa.func.date(latest_closed, sa.literal_column("'+1 day'"))
    return sa.func.max(day, sa.func.coalesce(next_open, day), type_=sa.Date)


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
