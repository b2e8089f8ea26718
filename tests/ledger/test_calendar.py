"""Business days: cut-off in a time zone, closing, late events roll to the next open day."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from blindgate.ledger import (
    BusinessDayOpen,
    Cutoff,
    close_business_day,
    post_payment_captured,
    post_payment_pending,
)
from tests.ledger.helpers import terms


def test_day_of_follows_the_zone_and_cutoff() -> None:
    shanghai = Cutoff(zone="Asia/Shanghai")
    assert shanghai.day_of(datetime(2026, 11, 24, 17, 0, tzinfo=UTC)) == date(2026, 11, 25)  # 01:00 local
    late = Cutoff(zone="UTC", at=time(16, 0))
    assert late.day_of(datetime(2026, 11, 24, 15, 59, tzinfo=UTC)) == date(2026, 11, 23)
    assert late.day_of(datetime(2026, 11, 24, 16, 0, tzinfo=UTC)) == date(2026, 11, 24)
    assert shanghai.end_of(date(2026, 11, 24)) == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def test_a_day_closes_only_after_its_cutoff_and_late_events_roll_over(engine: sa.Engine) -> None:
    cutoff = Cutoff()
    day = date(2026, 11, 24)
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:
        with pytest.raises(BusinessDayOpen, match="2026-11-24"):
            close_business_day(conn, cutoff, day, now=noon)
        assert post_payment_pending(conn, terms("early"), at=noon).business_date == day
        assert close_business_day(conn, cutoff, day, now=noon + timedelta(hours=12))
        assert not close_business_day(conn, cutoff, day, now=noon + timedelta(hours=12))
        late = post_payment_pending(conn, terms("late"), at=noon + timedelta(hours=1))
        assert late.business_date == day + timedelta(days=1)


def test_a_day_closed_by_another_worker_moves_this_ones_later_events(engine: sa.Engine) -> None:
    """No worker may keep a stale idea of the last closed day: the store decides in the INSERT."""
    cutoff = Cutoff()
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    with engine.begin() as conn:  # this worker has posted into the day before it closes
        assert post_payment_pending(conn, terms("before"), at=noon).business_date == noon.date()
    with engine.begin() as other:  # another worker (or the settle command) closes the day
        assert close_business_day(other, cutoff, noon.date(), now=noon + timedelta(hours=12))
    with engine.begin() as conn:
        after = post_payment_pending(conn, terms("after"), at=noon + timedelta(hours=1))
        captured = post_payment_captured(conn, "before", at=noon + timedelta(hours=1))
    assert after.business_date == captured.business_date == noon.date() + timedelta(days=1)


def test_events_in_open_days_keep_their_own_day_after_an_earlier_close(engine: sa.Engine) -> None:
    cutoff = Cutoff()
    day = date(2026, 11, 24)
    with engine.begin() as conn:
        close_business_day(conn, cutoff, day, now=datetime(2026, 11, 30, tzinfo=UTC))
        later = post_payment_pending(conn, terms("later"), at=datetime(2026, 11, 27, 3, 0, tzinfo=UTC))
    assert later.business_date == date(2026, 11, 27)
