"""`blindgate ledger close --date D`: an operator closes a business day by hand, once."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from blindgate.cli import main as blindgate
from blindgate.cli import usage
from blindgate.ledger.calendar import is_closed
from blindgate.storage import open_engine as open_store


def _store(tmp_path: Path) -> str:
    """A fresh gateway store at the current schema (as the gateway makes it on start)."""
    from blindgate.storage.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    engine = open_store(url)
    upgrade(engine)
    engine.dispose()
    return url


def _closed(url: str, day: date) -> bool:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            return is_closed(conn, day)
    finally:
        engine.dispose()


def test_close_a_past_day_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _store(tmp_path)
    assert "close a business day" in usage()
    assert (
        blindgate(["ledger", "close", "--date", "2026-11-20", "--db", url, "--zone", "Asia/Singapore"]) == 0
    )
    said = json.loads(capsys.readouterr().out)
    assert said == {
        "business_date": "2026-11-20",
        "state": "closed",
        "zone": "Asia/Singapore",
        "cutoff": "00:00",
    }
    assert _closed(url, date(2026, 11, 20)) and _closed(url, date(2026, 11, 19))
    assert not _closed(url, date(2026, 11, 21))
    assert blindgate(["ledger", "close", "--date", "2026-11-20", "--db", url]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "already closed"


def test_a_day_that_still_runs_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _store(tmp_path)
    today = datetime.now(UTC).date() + timedelta(days=1)  # runs until tomorrow's cut-off at least
    assert blindgate(["ledger", "close", "--date", today.isoformat(), "--db", url]) == 2
    assert "not closed" in capsys.readouterr().err
    assert not _closed(url, today)


@pytest.mark.parametrize(
    "extra", [["--zone", "Mars/Olympus"], ["--network", "no-such-network.json"]], ids=["zone", "network"]
)
def test_bad_cutoff_settings_are_refused(tmp_path: Path, extra: list[str]) -> None:
    url = _store(tmp_path)
    assert blindgate(["ledger", "close", "--date", "2026-11-20", "--db", url, *extra]) == 2
    assert not _closed(url, date(2026, 11, 20))


def test_a_missing_store_is_refused_not_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert blindgate(["ledger", "close", "--date", "2026-11-20", "--db", url]) == 3
    assert not (tmp_path / "none.db").exists()
