"""Settling a day on a live store: payments go on while the day's batches are totalled.

`settle` closes the day in a short transaction, totals the closed day outside any write
transaction, and records the batches in another short one. A payment that posts while the
totals run (here: in the middle of them, through another connection whose lock wait is
bounded, as the serving gateway's is) must get through, into the next open day. In one
transaction (`settle_day`), the close's lock — SQLite's write lock, PostgreSQL's SHARE lock on
``ledger_entries`` — was held through the whole scan, and that payment failed at its timeout.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from blindgate.ledger import Cutoff, post_payment_captured, post_payment_pending
from blindgate.settlement import batches as settlement_batches
from blindgate.settlement import settle, settle_day
from blindgate.storage import open_engine
from blindgate.storage.schema import entries
from tests.ledger.helpers import T0, terms
from tests.settlement.test_settlement import AFTER, DAY

LIVE_LOCK_TIMEOUT_S = 2.0


def _captured(conn: sa.Connection, payment_id: str) -> None:
    post_payment_pending(conn, terms(payment_id, 1_000), at=T0)
    post_payment_captured(conn, payment_id, at=T0)


def _settle_while_a_payment_posts(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, settling: object
) -> date:
    """Settle DAY with ``settling`` while a live payment posts mid-totals; the day it landed in."""
    with engine.begin() as conn:
        _captured(conn, "settled-today")
    url = engine.url.render_as_string(hide_password=False)
    live = open_engine(url, lock_timeout_s=LIVE_LOCK_TIMEOUT_S)
    totals = settlement_batches.compute_batches

    def totalling_while_a_payment_posts(conn: sa.Connection, day: date) -> list[settlement_batches.Batch]:
        with live.begin() as other:  # the gateway, serving, posts a payment made at the same moment
            post_payment_pending(other, terms("live", 2_000), at=T0)
        return totals(conn, day)

    monkeypatch.setattr(settlement_batches, "compute_batches", totalling_while_a_payment_posts)
    try:
        if settling is settle:
            settle(engine, DAY, now=AFTER, cutoff=Cutoff())
        else:
            with engine.begin() as conn:
                settle_day(conn, DAY, now=AFTER, cutoff=Cutoff())
    finally:
        live.dispose()
    with engine.connect() as conn:
        landed: date = conn.execute(
            sa.select(entries.c.business_date).where(entries.c.payment_id == "live")
        ).scalar_one()
    return landed


def test_a_payment_posts_while_the_closed_day_is_totalled(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    landed = _settle_while_a_payment_posts(engine, monkeypatch, settle)
    assert landed == DAY + timedelta(days=1)  # the next open day: the settled day took nothing new


def test_in_one_transaction_the_same_payment_waits_for_the_whole_settlement(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `settle` avoids (the command used this until 2026-12-06)."""
    with pytest.raises(sa.exc.OperationalError):  # SQLite: database is locked; PostgreSQL: lock timeout
        _settle_while_a_payment_posts(engine, monkeypatch, settle_day)
