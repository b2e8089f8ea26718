"""Settlement: batches agree with the ledger and their items; files; reconciliation; bad input."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.ledger import (
    BusinessDayOpen,
    Cutoff,
    check_ledger,
    close_business_day,
    post_cancel,
    post_payment_captured,
    post_payment_pending,
    post_refund,
    void_payment,
)
from blindgate.settlement import BadRecords, settle_day, write_settlement_files
from blindgate.settlement.files import items_name, summary_name
from blindgate.settlement.reconcile import (
    read_gateway_items,
    read_partner_records,
    reconcile,
    write_partner_records,
)
from tests.ledger.helpers import T0, row_count, terms

DAY = date(2026, 11, 24)
AFTER = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


def _day_of_traffic(conn: sa.Connection) -> None:
    for index in range(6):
        post_payment_pending(conn, terms(f"p{index}", 1_000 + index), at=T0)
        post_payment_captured(conn, f"p{index}", at=T0)
    post_payment_pending(
        conn, terms("jp", 5_000, currency="JPY", wallet_currency="KWD", fx_rate=Decimal("0.00205")), at=T0
    )
    post_payment_captured(conn, "jp", at=T0)
    post_payment_pending(conn, terms("failed", 700), at=T0)
    void_payment(conn, "failed", at=T0)
    post_refund(conn, "p1", "r1", 400, at=T0 + timedelta(hours=1))
    post_refund(conn, "p1", "r2", 601, at=T0 + timedelta(hours=2))
    post_cancel(conn, "p2", at=T0 + timedelta(hours=3))


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_batches_net_equals_items_and_ledger(engine: sa.Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        _day_of_traffic(conn)
        batches = settle_day(conn, DAY, now=AFTER, cutoff=Cutoff())
    assert {(b.partner_id, b.role, b.currency) for b in batches} == {
        ("ACQ_1", "ACQUIRER", "USD"),
        ("ACQ_1", "ACQUIRER", "JPY"),
        ("WAL_1", "WALLET", "CNY"),
        ("WAL_1", "WALLET", "KWD"),
    }
    with engine.connect() as conn:
        written = write_settlement_files(conn, DAY, batches, tmp_path)
        report = check_ledger(conn)
        assert report.ok, report.problems
    for batch in batches:
        items = _read(tmp_path / items_name(batch))
        summary = {row["transactionType"]: row for row in _read(tmp_path / summary_name(batch))}
        assert (
            sum(int(item["netAmount"]) for item in items)
            == batch.net_amount
            == int(summary["TOTAL"]["netAmount"])
        )
        assert int(summary["TOTAL"]["count"]) == len(items)
        for kind in ("PAYMENT", "REFUND", "CANCEL"):
            of_kind = [item for item in items if item["transactionType"] == kind]
            assert int(summary[kind]["count"]) == len(of_kind)
            assert int(summary[kind]["grossAmount"]) == sum(int(item["settlementAmount"]) for item in of_kind)
    usd = next(b for b in batches if b.currency == "USD")
    assert (
        usd.by_type["PAYMENT"].count == 6
        and usd.by_type["REFUND"].count == 2
        and usd.by_type["CANCEL"].count == 1
    )
    # the acquirer is owed the payments less the merchant discount, less what went back
    assert usd.net_amount == sum(1_000 + i for i in (0, 3, 4, 5)) - sum(
        round((1_000 + i) * 25 / 1000) for i in (0, 3, 4, 5)
    )
    assert len(written) == 8


def test_settling_again_changes_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        _day_of_traffic(conn)
        first = settle_day(conn, DAY, now=AFTER, cutoff=Cutoff())
        rows = row_count(conn)
        again = settle_day(conn, DAY, now=AFTER + timedelta(hours=5), cutoff=Cutoff())
        assert [b.batch_id for b in again] == [b.batch_id for b in first]
        assert [b.net_amount for b in again] == [b.net_amount for b in first]
        assert row_count(conn) == rows


def test_an_open_day_is_refused_and_nothing_is_written(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _day_of_traffic(conn)
        rows = row_count(conn)
        with pytest.raises(BusinessDayOpen, match="still open"):
            settle_day(conn, DAY, now=AFTER - timedelta(seconds=1), cutoff=Cutoff())
        assert row_count(conn) == rows


def test_a_day_the_gateway_closed_settles_without_a_cutoff(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        _day_of_traffic(conn)
        close_business_day(conn, Cutoff(), DAY, now=AFTER + timedelta(days=3))  # the demo's clock ran ahead
        assert settle_day(conn, DAY, now=T0, cutoff=None)


def _records(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["transactionId", "transactionType", "settlementCurrency", "settlementAmount", "status"]
        )
        writer.writerows(rows)
    return path


def test_reconcile_lists_every_break(engine: sa.Engine, tmp_path: Path) -> None:
    with engine.begin() as conn:
        _day_of_traffic(conn)
        batches = settle_day(conn, DAY, now=AFTER, cutoff=Cutoff())
    with engine.connect() as conn:
        write_settlement_files(conn, DAY, batches, tmp_path)
    gateway = read_gateway_items(tmp_path.glob("settlementItems_ACQ_1_*.csv"))
    honest = [
        [r.transaction_id, r.transaction_type, r.currency, str(r.amount), "SUCCESS"] for r in gateway.values()
    ]
    assert reconcile(gateway, read_partner_records(_records(tmp_path / "ok.csv", honest))) == []
    write_partner_records(tmp_path / "written.csv", gateway.values())
    assert read_partner_records(tmp_path / "written.csv") == gateway
    edited = [row[:] for row in honest if row[0] != "p0"]  # p0 missing at the partner
    edited[0][3] = str(int(edited[0][3]) + 1)  # amount mismatch
    edited[1][4] = "FAIL"  # status mismatch
    edited.append(["ghost", "PAYMENT", "USD", "100", "SUCCESS"])  # missing at the gateway
    edited.append(["never", "PAYMENT", "USD", "100", "FAIL"])  # failed on both sides: no break
    breaks = reconcile(gateway, read_partner_records(_records(tmp_path / "bad.csv", edited)))
    assert sorted(b.kind for b in breaks) == [
        "AMOUNT_MISMATCH",
        "MISSING_AT_GATEWAY",
        "MISSING_AT_PARTNER",
        "STATUS_MISMATCH",
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["p1", "PAYMENT", "USD", "12.5", "SUCCESS"], "row 3: settlementAmount must be an integer"),
        (["p1", "SALE", "USD", "100", "SUCCESS"], "row 3: transactionType must be one of"),
        (["", "PAYMENT", "USD", "100", "SUCCESS"], "row 3: transactionId is empty"),
        (["p1", "PAYMENT", "usd", "100", "SUCCESS"], "row 3: settlementCurrency must be an ISO 4217"),
        (["p0", "PAYMENT", "USD", "100", "SUCCESS"], "row 3: PAYMENT p0 appears twice"),
    ],
)
def test_bad_record_rows_are_named(tmp_path: Path, row: list[str], message: str) -> None:
    path = _records(tmp_path / "records.csv", [["p0", "PAYMENT", "USD", "100", "SUCCESS"], row])
    with pytest.raises(BadRecords, match=message):
        read_partner_records(path)
