"""SQLite writers of the gateway's store take turns on a lock file (`storage.engine.TakesTurnsToWrite`).

(Here beside the ledger's tests because every payment's postings are written this way.)
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.storage import engine as store
from blindgate.storage.migrate import open_store
from blindgate.storage.schema import notifications

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[sa.Engine, Path]]:
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    yield engine, tmp_path / "gw.db-writer.lock"
    engine.dispose()


def _notification(payment_id: str) -> dict[str, object]:
    return {"payment_id": payment_id, "acquirer_id": "ACQ", "body": "{}", "next_at": NOW}


def _turn_is_free(lock_file: Path) -> bool:
    """Whether another open file could take the turn now (it gives it straight back)."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the file releases a turn taken here
    return True


def test_a_write_holds_the_turn_until_its_commit(db: tuple[sa.Engine, Path]) -> None:
    engine, lock_file = db
    with engine.begin() as conn:
        conn.execute(sa.select(notifications)).all()
        assert _turn_is_free(lock_file)  # reading takes no turn
        conn.execute(notifications.insert(), _notification("P1"))
        assert not _turn_is_free(lock_file)
    assert _turn_is_free(lock_file)


def test_a_rolled_back_write_gives_the_turn_back(db: tuple[sa.Engine, Path]) -> None:
    engine, lock_file = db
    with engine.begin() as conn:
        conn.execute(notifications.insert(), _notification("P1"))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(notifications.insert(), _notification("P1"))
    assert _turn_is_free(lock_file)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notifications)).scalar() == 1


@pytest.mark.timeout(30)  # the failure this test guards against is a hang
def test_a_writer_goes_ahead_when_the_turn_never_comes(
    db: tuple[sa.Engine, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn held for ever (a writer that cannot give it back) delays a write, never stops it."""
    engine, lock_file = db
    monkeypatch.setattr(store, "TURN_WAIT_S", 0.05)
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with engine.begin() as conn:
            conn.execute(notifications.insert(), _notification("P1"))
    finally:
        os.close(fd)
    with engine.connect() as conn:
        assert conn.execute(sa.select(notifications.c.payment_id)).scalars().all() == ["P1"]


def test_no_turns_for_a_database_in_memory() -> None:
    engine = open_store("sqlite://")
    try:
        with engine.begin() as conn:
            conn.execute(notifications.insert(), _notification("P1"))
            assert not isinstance(conn.connection.dbapi_connection, store.TakesTurnsToWrite)
    finally:
        engine.dispose()


def test_a_database_whose_directory_refuses_the_lock_file_still_writes(tmp_path: Path) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    engine.dispose()
    lock_file = tmp_path / "gw.db-writer.lock"
    lock_file.unlink(missing_ok=True)
    lock_file.mkdir()  # os.open of the lock file now fails, as in a directory we may not write
    engine = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(notifications.insert(), _notification("P1"))
        with engine.connect() as conn:
            assert conn.execute(sa.select(notifications.c.payment_id)).scalars().all() == ["P1"]
    finally:
        engine.dispose()
