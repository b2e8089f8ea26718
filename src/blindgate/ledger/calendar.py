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

from blindgate.ledger.errors import BusinessDayOpen, NaiveTime
from blindgate.storage.schema import days


@dataclass(frozen=True)
class Cutoff:
    """When a business day ends: ``at`` local time in ``zone`` (an IANA name)."""

    zone: str = "UTC"
    at: time = field(default_factory=lambda: time(0))

    def day_of(self, moment: datetime) -> date:
        """The business day a (time-zone aware) moment belongs to, ignoring closures."""
        if moment.tzinfo is None:
            raise NaiveTime("times given to the ledger must be time-zone aware")
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


def open_day_sql(dialect: str, day: sa.BindParameter[date]) -> sa.ColumnElement[date]:
    """SQL for the open business day an event of (cut-off rule) day ``day`` posts into: ``day``,
    or the day after the last closed one if ``day`` is closed.

    The store evaluates it inside the posting's own INSERT into ``ledger_entries``: no SELECT
    and no cached answer that could go stale when another worker closes a day. No close can
    commit between that reading and the posting's commit: on SQLite the INSERT holds the single
    write lock until commit; on PostgreSQL it holds ROW EXCLUSIVE on ``ledger_entries``, which
    `close_business_day`'s SHARE lock waits for (and a posting that queued behind a close
    reads ``ledger_days`` only once the close has committed: a statement's snapshot is taken
    after its locks are granted).
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
    if conn.dialect.name == "postgresql":
        # Wait for every posting in flight (each holds ROW EXCLUSIVE on ledger_entries until it
        # commits) and hold new ones back until this transaction ends: see `open_day_sql`.
        conn.execute(_HOLD_POSTINGS)
    if is_closed(conn, day):
        return False
    conn.execute(sa.insert(days).values(business_date=day, closed_at=now.astimezone(UTC)))
    return True


_HOLD_POSTINGS = sa.text("LOCK TABLE ledger_entries IN SHARE MODE")
