"""Which business days a run touched, and closing them all at once.

A run that straddles its cut-off posts into two (or more) business days: payments before
the cut-off in day D, those after it — and refunds or cancels of D's payments — in D+1. To
settle all of it, every one of those days must be closed and settled, not only the day the
run ended in. `close_days_touched` closes through the latest day holding a posting (closing
a day closes every earlier one) and names each day that holds one.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from blindgate.ledger.calendar import Cutoff, close_business_day
from blindgate.ledger.postings import SETTLEMENT
from blindgate.storage.schema import entries


def days_with_postings(conn: sa.Connection) -> list[date]:
    """Business days holding a posting other than a settlement, oldest first."""
    query = (
        sa.select(entries.c.business_date)
        .where(entries.c.event_type != SETTLEMENT)
        .distinct()
        .order_by(entries.c.business_date)
    )
    return list(conn.execute(query).scalars())


def close_days_touched(conn: sa.Connection, cutoff: Cutoff, now: datetime) -> list[date]:
    """Close every business day up to the latest one that holds a posting, or up to today.

    The closing clock runs ahead to that day's cut-off (as the demo's does), so the last
    day closes even if the wall clock has not reached its end. Returns the days holding a
    posting (the ones to settle), or today alone when nothing was posted.
    """
    touched = days_with_postings(conn)
    last = max([*touched, cutoff.day_of(now)])
    close_business_day(conn, cutoff, last, now=max(now, cutoff.end_of(last)))
    return touched or [last]
