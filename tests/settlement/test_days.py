"""A run across its business day's cut-off: every day it touched is closed, settled, reconciled.

The demo's cut-off is 00:00 Asia/Singapore = 16:00 UTC. Events stamped either side of it
(by an injected clock: the ledger takes each event's time) fall into two business days;
a refund or cancel after the cut-off of a payment before it lands in the second day.
Closing only the day the run ended in, and settling it, leaves the first day's payments
out (breaks); `close_days_touched` names both, and the partner's records reconcile with
zero breaks against both days' files.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import sqlalchemy as sa

from blindgate.ledger import (
    Cutoff,
    check_ledger,
    close_business_day,
    post_cancel,
    post_payment_captured,
    post_payment_pending,
    post_refund,
)
from blindgate.ledger.calendar import is_closed
from blindgate.settlement import settle_day, write_settlement_files
from blindgate.settlement.days import close_days_touched, days_with_postings
from blindgate.settlement.reconcile_command import main as reconcile_command
from tests.ledger.helpers import terms

SINGAPORE = Cutoff("Asia/Singapore", time(0))
CUT = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)  # 00:00 on the 25th in Singapore
BEFORE, AFTER = CUT - timedelta(seconds=30), CUT + timedelta(seconds=30)
DAY_1, DAY_2 = date(2026, 11, 24), date(2026, 11, 25)
AMOUNTS = {"p1": 1_000, "p2": 2_000, "p3": 3_000, "p4": 4_000}


def _traffic_across_the_cut(conn: sa.Connection) -> None:
    """p1 before; p2 accepted before, captured after; p3 after; p1 refunded and p4 cancelled after."""
    for payment_id in ("p1", "p2", "p4"):
        post_payment_pending(conn, terms(payment_id, AMOUNTS[payment_id]), at=BEFORE, cutoff=SINGAPORE)
    for payment_id in ("p1", "p4"):
        post_payment_captured(conn, payment_id, at=BEFORE, cutoff=SINGAPORE)
    post_payment_captured(conn, "p2", at=AFTER, cutoff=SINGAPORE)
    post_payment_pending(conn, terms("p3", AMOUNTS["p3"]), at=AFTER, cutoff=SINGAPORE)
    post_payment_captured(conn, "p3", at=AFTER, cutoff=SINGAPORE)
    post_refund(conn, "p1", "r1", 400, at=AFTER, cutoff=SINGAPORE)
    post_cancel(conn, "p4", at=AFTER, cutoff=SINGAPORE)


def _acquirer_records(path: Path) -> Path:
    """What the acquirer's merchants saw succeed, from its side (it keeps no business day)."""
    rows = [[p, "PAYMENT", "USD", amount, "SUCCESS"] for p, amount in AMOUNTS.items()]
    rows += [["r1", "REFUND", "USD", -400, "SUCCESS"], ["p4", "CANCEL", "USD", -4_000, "SUCCESS"]]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["transactionId", "transactionType", "settlementCurrency", "settlementAmount", "status"]
        )
        writer.writerows(rows)
    return path


def _settle(engine: sa.Engine, days: list[date], out: Path) -> dict[str, list[str]]:
    """Settle each day into ``out``; returns the acquirer's items by business date ("TYPE id")."""
    for day in days:
        with engine.begin() as conn:
            found = settle_day(conn, day, now=AFTER, cutoff=None)  # closed: no cut-off needed
        with engine.connect() as conn:
            write_settlement_files(conn, day, found, out)
    items: dict[str, list[str]] = {}
    for path in sorted(out.glob("settlementItems_ACQ_1_*.csv")):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                items.setdefault(row["businessDate"], []).append(
                    f"{row['transactionType']} {row['transactionId']}"
                )
    return {day: sorted(found) for day, found in items.items()}


def _reconcile(records: Path, out: Path) -> tuple[int, list[dict[str, str]]]:
    breaks = out / "breaks.csv"
    code = reconcile_command(
        ["--partner", "ACQ_1", "--records", str(records), "--settlement-dir", str(out), "--out", str(breaks)]
    )
    with open(breaks, newline="") as handle:
        return code, list(csv.DictReader(handle))


def test_a_run_across_the_cutoff_settles_both_days_with_zero_breaks(
    engine: sa.Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        _traffic_across_the_cut(conn)
        assert days_with_postings(conn) == [DAY_1, DAY_2]
        days = close_days_touched(conn, SINGAPORE, now=AFTER)  # the clock runs ahead to DAY_2's end
        assert days == [DAY_1, DAY_2]
        assert is_closed(conn, DAY_1) and is_closed(conn, DAY_2)
    out = tmp_path / "settlement"
    assert _settle(engine, days, out) == {
        "2026-11-24": ["PAYMENT p1", "PAYMENT p4"],
        "2026-11-25": ["CANCEL p4", "PAYMENT p2", "PAYMENT p3", "REFUND r1"],
    }
    code, breaks = _reconcile(_acquirer_records(tmp_path / "records.csv"), out)
    assert (code, breaks) == (0, [])
    with engine.connect() as conn:
        report = check_ledger(conn)
    assert report.ok, report.problems


def test_settling_only_the_last_day_shows_the_first_days_payments_as_breaks(
    engine: sa.Engine, tmp_path: Path
) -> None:
    """What a demo across the cut-off did before: only the day it ended in was settled."""
    with engine.begin() as conn:
        _traffic_across_the_cut(conn)
        close_business_day(conn, SINGAPORE, DAY_2, now=SINGAPORE.end_of(DAY_2))
    out = tmp_path / "settlement"
    _settle(engine, [DAY_2], out)
    code, breaks = _reconcile(_acquirer_records(tmp_path / "records.csv"), out)
    assert code == 1
    # p1 and p4 were captured before the cut-off; p2's capture (after it) is in DAY_2.
    assert sorted((b["break"], b["transactionType"], b["transactionId"]) for b in breaks) == [
        ("MISSING_AT_GATEWAY", "PAYMENT", "p1"),
        ("MISSING_AT_GATEWAY", "PAYMENT", "p4"),
    ]


def test_a_day_closed_mid_run_sends_later_events_to_the_next_day(engine: sa.Engine, tmp_path: Path) -> None:
    """The gateway closes DAY_1 at its cut-off while payments are in flight: late ones post into DAY_2."""
    with engine.begin() as conn:
        for payment_id in ("p1", "p2", "p4"):
            post_payment_pending(conn, terms(payment_id, AMOUNTS[payment_id]), at=BEFORE, cutoff=SINGAPORE)
        post_payment_captured(conn, "p1", at=BEFORE, cutoff=SINGAPORE)
        close_business_day(conn, SINGAPORE, DAY_1, now=CUT)
        # Stamped before the cut-off (a slow wallet), posted after the close: into DAY_2.
        for payment_id in ("p2", "p4"):
            post_payment_captured(conn, payment_id, at=BEFORE, cutoff=SINGAPORE)
        post_payment_pending(conn, terms("p3", AMOUNTS["p3"]), at=AFTER, cutoff=SINGAPORE)
        post_payment_captured(conn, "p3", at=AFTER, cutoff=SINGAPORE)
        post_refund(conn, "p1", "r1", 400, at=AFTER, cutoff=SINGAPORE)
        post_cancel(conn, "p4", at=AFTER, cutoff=SINGAPORE)
        assert close_days_touched(conn, SINGAPORE, now=AFTER) == [DAY_1, DAY_2]
    out = tmp_path / "settlement"
    assert _settle(engine, [DAY_1, DAY_2], out) == {
        "2026-11-24": ["PAYMENT p1"],
        "2026-11-25": ["CANCEL p4", "PAYMENT p2", "PAYMENT p3", "PAYMENT p4", "REFUND r1"],
    }
    assert _reconcile(_acquirer_records(tmp_path / "records.csv"), out) == (0, [])


def test_with_nothing_posted_today_is_closed_and_named(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        assert close_days_touched(conn, SINGAPORE, now=AFTER) == [DAY_2]
        assert is_closed(conn, DAY_2)
