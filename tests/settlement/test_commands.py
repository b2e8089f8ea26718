"""The commands end to end on a SQLite store: ledger check, settle, reconcile, and their refusals."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.cli import main as blindgate
from blindgate.ledger import (
    Cutoff,
    close_business_day,
    post_payment_captured,
    post_payment_pending,
    post_refund,
)
from blindgate.storage import NoStore, open_engine, resolve_db_url
from blindgate.storage.migrate import upgrade
from blindgate.storage.schema import lines
from tests.ledger.helpers import T0, terms


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    engine = open_engine(url)
    upgrade(engine)
    with engine.begin() as conn:
        for index in range(3):
            post_payment_pending(conn, terms(f"p{index}"), at=T0)
            post_payment_captured(conn, f"p{index}", at=T0)
        post_refund(conn, "p0", "r0", 2_000, at=T0)
        close_business_day(conn, Cutoff(), T0.date(), now=T0 + timedelta(days=1))
    engine.dispose()
    return url


def test_ledger_check_passes_then_finds_tampering(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert blindgate(["ledger", "check", "--db", store]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    engine = open_engine(store)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TRIGGER ledger_lines_no_update"))  # as someone with DDL rights could
        conn.execute(sa.update(lines).where(lines.c.id == 1).values(amount=lines.c.amount * 2))
    engine.dispose()
    assert blindgate(["ledger", "check", "--db", store]) == 1
    assert json.loads(capsys.readouterr().out)["problems"]


def test_settle_then_reconcile_with_zero_breaks(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "settlement"
    assert blindgate(["settle", "--date", T0.date().isoformat(), "--out", str(out), "--db", store]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["batches"]) == 2 and len(summary["files"]) == 4
    items = next(out.glob("settlementItems_WAL_1_*.csv"))
    records = tmp_path / "wallet-records.csv"
    with open(items, newline="") as source, open(records, "w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(
            ["transactionId", "transactionType", "settlementCurrency", "settlementAmount", "status"]
        )
        for row in csv.DictReader(source):
            writer.writerow([row["transactionId"], row["transactionType"], row["settlementCurrency"],
                             row["settlementAmount"], "SUCCESS"])  # fmt: skip
    args = ["reconcile", "--partner", "WAL_1", "--records", str(records), "--settlement-dir", str(out)]
    assert blindgate(args) == 0
    assert blindgate(["ledger", "check", "--db", store]) == 0
    with open(records, "a", newline="") as target:
        target.write("x1,PAYMENT,CNY,not-a-number,SUCCESS\n")
    report = tmp_path / "breaks.csv"
    assert blindgate([*args, "--out", str(report)]) == 2
    assert "row 6: settlementAmount must be an integer" in capsys.readouterr().err
    assert not report.exists()


def test_settle_refuses_an_open_day_and_writes_nothing(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    out = tmp_path / "nothing"
    assert blindgate(["settle", "--date", tomorrow, "--out", str(out), "--db", store]) == 2
    assert "still open" in capsys.readouterr().err
    assert not out.exists()


def test_the_store_defaults_to_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BLINDGATE_DB", raising=False)
    with pytest.raises(NoStore, match="blindgate demo"):
        resolve_db_url(None, tmp_path / "demo-run")
    (tmp_path / "demo-run").mkdir()
    (tmp_path / "demo-run" / "gateway.db").touch()
    assert resolve_db_url(None, tmp_path / "demo-run").endswith("demo-run/gateway.db")
    (tmp_path / "demo-run" / "gateway").mkdir()
    (tmp_path / "demo-run" / "gateway" / "gateway.db").touch()
    assert resolve_db_url(None, tmp_path / "demo-run").endswith("demo-run/gateway/gateway.db")
    (tmp_path / "demo-run" / "report.json").write_text(json.dumps({"gateway_db": "postgresql://x/y"}))
    assert resolve_db_url(None, tmp_path / "demo-run") == "postgresql://x/y"
    assert resolve_db_url("sqlite:///given.db", tmp_path / "demo-run") == "sqlite:///given.db"
