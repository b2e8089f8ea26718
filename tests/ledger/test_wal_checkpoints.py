"""The gateway's SQLite store checkpoints its WAL on a thread of its own, not in a COMMIT.

(Here beside the ledger's tests because the postings are most of what the WAL holds.)
"""

from __future__ import annotations

import gc
import queue
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.storage import engine as store
from blindgate.storage.migrate import open_store
from blindgate.storage.schema import notifications

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WAIT_S = 10  # a bound on every wait below, never a figure under test


def _write_rows(engine: sa.Engine, count: int) -> None:
    with engine.begin() as conn:
        for index in range(count):
            conn.execute(
                notifications.insert(),
                {"payment_id": f"P{index}", "acquirer_id": "ACQ", "body": "{}", "next_at": NOW},
            )


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint"]


def test_serving_connections_leave_checkpoints_to_the_thread(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}", checkpoints=True)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL, unchanged
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            assert pages == store.WAL_AUTOCHECKPOINT_PAGES
    finally:
        engine.dispose()


def test_the_thread_copies_committed_pages_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results: queue.Queue[tuple[int, int, int]] = queue.Queue()
    passive = store.checkpoint

    def recorded(connection: sqlite3.Connection) -> tuple[int, int, int]:
        outcome = passive(connection)
        results.put(outcome)
        return outcome

    monkeypatch.setattr(store, "checkpoint", recorded)
    monkeypatch.setattr(store, "CHECKPOINT_INTERVAL_S", 0.01)
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}", checkpoints=True)
    try:
        _write_rows(engine, 50)  # far below the safety net: no COMMIT checkpoints these
        while True:
            busy, frames, copied = results.get(timeout=WAIT_S)
            if copied > 0:
                break
        assert busy == 0 and copied == frames  # every committed frame is in the database file
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar() == 50
    finally:
        engine.dispose()


def test_the_thread_ends_with_its_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "CHECKPOINT_INTERVAL_S", 0.01)
    before = set(_checkpointers())
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}", checkpoints=True)
    (thread,) = set(_checkpointers()) - before
    engine.dispose()
    del engine
    gc.collect()
    thread.join(timeout=WAIT_S)
    assert not thread.is_alive()


def test_no_thread_for_a_database_in_memory() -> None:
    before = set(_checkpointers())
    engine = open_store("sqlite://", checkpoints=True)
    try:
        assert set(_checkpointers()) - before == set()
    finally:
        engine.dispose()


def test_a_checkpoint_on_a_closed_connection_is_skipped(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "x.db")
    connection.close()
    assert store.checkpoint(connection) == (1, -1, -1)
