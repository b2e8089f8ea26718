"""The one engine factory: every part of blindgate opens its store with `open_engine`.

SQLite (a file, WAL) by default, PostgreSQL by URL. What an engine brings, beyond
``sqlalchemy.create_engine``:

- SQLite: WAL with ``synchronous=NORMAL``, a busy timeout, the writers' turns between
  processes (`WriterTurn`, `TakesTurnsToWrite`) and passive WAL checkpoints off the event
  loop (`_Checkpointer`);
- PostgreSQL: a pool sized for the gateway's concurrent requests.

It creates no table: `blindgate.storage.migrate` brings a store to the current schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import sqlite3
import threading
import time
import weakref
from typing import Any, ClassVar

import sqlalchemy as sa

from blindgate.storage.errors import BadStoreUrl

# A committing connection checkpoints the WAL itself only past this many pages: a safety net.
# Normally `_Checkpointer` has done it long before, off the event loop (module docstring).
WAL_AUTOCHECKPOINT_PAGES = 10_000
BUSY_TIMEOUT_S = 30.0  # how long a SQLite statement waits for another connection's lock (default)
CHECKPOINT_INTERVAL_S = 0.2


def open_engine(url: str, *, checkpoints: bool = False, lock_timeout_s: float | None = None) -> sa.Engine:
    """An engine on the store at ``url`` (the store's tables are `migrate`'s business).

    ``lock_timeout_s``: how long one statement may wait on another connection's lock before it
    fails (SQLite's busy timeout; PostgreSQL's ``lock_timeout``, with a ``statement_timeout`` of
    twice that): the serving gateway bounds every store call so (`blindgate.storage.offload`).
    None: SQLite waits `BUSY_TIMEOUT_S`, PostgreSQL as long as it takes (settlement, migrations).

    ``checkpoints``: a SQLite file gets passive WAL checkpoints on a thread of their own (below)
    while the engine lives: for the serving gateway. A command's short-lived engine goes
    without: the thread would outlive its ``dispose`` by up to a round, and its connection,
    the file's last, removes the ``-wal`` and ``-shm`` files when it closes.

    SQLite: WAL with ``synchronous=NORMAL`` (a committed transaction survives a crash of the
    process: it is in the WAL, in the operating system's hands). A checkpoint (copying the WAL
    back into the database, with its fsyncs) used to run inside every thousandth page's COMMIT,
    on the event loop: about 0.3 ms of a payment's wall time. A thread now runs passive
    checkpoints beside it (`_Checkpointer`); passive checkpoints never block a writer or a
    reader, and only ever copy committed pages, so no guarantee changes.
    """
    try:
        sa.engine.make_url(url).get_dialect()
    except sa.exc.ArgumentError:  # NoSuchModuleError included
        raise BadStoreUrl("the store URL names no database blindgate can open") from None
    if url.startswith("sqlite"):
        busy = BUSY_TIMEOUT_S if lock_timeout_s is None else lock_timeout_s
        connect_args: dict[str, object] = {"timeout": busy, "check_same_thread": False}
        if _is_file(sa.engine.make_url(url).database):
            connect_args["factory"] = TakesTurnsToWrite
        engine = sa.create_engine(url, connect_args=connect_args)

        # Weakly: the engine's own listener must not keep it alive (the checkpointer ends with it).
        engine_ref, checkpointing = weakref.ref(engine), threading.Lock()

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            _into_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cursor.close()
            # The checkpointer starts with the first connection, once the file exists (it never
            # creates one); not before, or it would find no file and end at once.
            opened = engine_ref()
            if checkpoints and opened is not None and checkpointing.acquire(blocking=False):
                _start_checkpoints(opened)

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _turn(conn: sa.Connection, _c: object, statement: str, *_: object) -> None:
            # Before the statement sqlite3 opens a transaction for (its first write).
            dbapi_connection = conn.connection.dbapi_connection
            if (
                isinstance(dbapi_connection, TakesTurnsToWrite)
                and not dbapi_connection.in_transaction
                and _WRITES.match(statement)
            ):
                dbapi_connection.take_turn()

    else:
        connect: dict[str, str] = {}
        if lock_timeout_s is not None:
            lock_ms = max(1, int(lock_timeout_s * 1000))
            given = sa.engine.make_url(url).query.get("options", "")  # e.g. a search_path: kept
            given = given if isinstance(given, str) else " ".join(given)
            connect["options"] = f"{given} -c lock_timeout={lock_ms} -c statement_timeout={2 * lock_ms}"
        engine = sa.create_engine(url, pool_size=10, max_overflow=10, pool_timeout=30, connect_args=connect)
    return engine


def _start_checkpoints(engine: sa.Engine) -> None:
    database = sqlite_file(engine)
    if database is not None:
        _Checkpointer(engine, os.path.abspath(database)).start()


def sqlite_file(engine: sa.Engine) -> str | None:
    """The SQLite file the engine writes; None for PostgreSQL, memory or a ``file:`` URI."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    return database if _is_file(database) else None


def _is_file(database: str | None) -> bool:
    return bool(database) and database != ":memory:" and not str(database).startswith("file:")


_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
TURN_WAIT_S = 5.0  # then SQLite's own busy timeout decides, as without the turns
TURN_POLL_S = 0.0001


class WriterTurn:
    """This process's turn at writing one SQLite file: an exclusive flock on ``<db>-writer.lock``.

    SQLite lets one writer in at a time and makes the others sleep 1, 2, 5, 10... ms between
    tries; two gateway processes on one file lost much of their time there (and a sleep stalls
    the whole event loop). A process takes the lock file's flock before writing, polled every
    0.1 ms, and gives it back once its last writer is done, so the next process goes in at
    once. It only orders processes: SQLite's own locking still decides, and past `TURN_WAIT_S`
    a writer goes ahead without the turn.

    One turn per file and process, shared and counted: every connection of the process (and
    `blindgate.gateway.group_commit`, which waits for it without blocking the event loop)
    holds it through the same open file, so two writers of one process never wait on each
    other. Keyed by process id as well: a child forked with the parent's open file would share
    the parent's lock, so it opens its own.
    """

    # Weakly held: the turn (and its open file) lives as long as a connection or a group commit
    # of the process uses it, so a process that opens many databases does not keep their files.
    _turns: ClassVar[weakref.WeakValueDictionary[tuple[str, int], WriterTurn]] = weakref.WeakValueDictionary()
    _registry = threading.Lock()

    def __init__(self, lock_file: str) -> None:
        try:
            self._fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # a directory we may not write to: no turns, SQLite's own waits
            self._fd = -1
        self._holders = 0
        self._count = threading.Lock()

    def __del__(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(Exception):  # closing the file gives back a turn still held
                os.close(self._fd)

    @classmethod
    def of(cls, database: str) -> WriterTurn:
        key = (f"{os.path.abspath(database)}-writer.lock", os.getpid())
        with cls._registry:
            turn = cls._turns.get(key)
            if turn is None:
                turn = cls._turns[key] = cls(key[0])
            return turn

    def try_take(self) -> bool:
        """Take the turn if this process holds it already or it is free; whether it did."""
        with self._count:
            if self._holders == 0 and self._fd >= 0:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
            self._holders += 1
            return True

    def force(self) -> None:
        """Go ahead without the turn (it never came): counted, so `give_back` stays paired."""
        with self._count:
            self._holders += 1

    def take(self) -> None:
        """Wait (blocking) for the turn, at most `TURN_WAIT_S`."""
        deadline = time.monotonic() + TURN_WAIT_S
        while not self.try_take():
            if time.monotonic() > deadline:
                return self.force()
            time.sleep(TURN_POLL_S)
        return None

    async def take_async(self) -> None:
        """Wait for the turn without blocking the event loop, at most `TURN_WAIT_S`.

        Polled with the event loop's own timer, which is only as fine as epoll's millisecond:
        meanwhile the loop serves other requests, whose units join the group that is waiting,
        so a coarse poll makes fewer, larger groups. (A thread polling every 0.1 ms instead
        measured slower: each of its wake-ups must win the GIL back from the busy loop.)"""
        deadline = time.monotonic() + TURN_WAIT_S
        while not self.try_take():
            if time.monotonic() > deadline:
                return self.force()
            await asyncio.sleep(TURN_POLL_S)
        return None

    def give_back(self) -> None:
        with self._count:
            self._holders -= 1
            if self._holders == 0 and self._fd >= 0:
                fcntl.flock(self._fd, fcntl.LOCK_UN)


class TakesTurnsToWrite(sqlite3.Connection):
    """A SQLite connection that holds its process's `WriterTurn` from a transaction's first
    write until its COMMIT or ROLLBACK is done."""

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self._turn = WriterTurn.of(os.fspath(database))
        self._holding = False

    def take_turn(self) -> None:
        if not self._holding:
            self._turn.take()
            self._holding = True

    def _give_turn_back(self) -> None:
        if self._holding:
            self._holding = False
            self._turn.give_back()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._give_turn_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_turn_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_turn_back()


def writer_turn(engine: sa.Engine) -> WriterTurn | None:
    """The process's turn at writing the engine's SQLite file; None for PostgreSQL or memory."""
    database = sqlite_file(engine)
    return None if database is None else WriterTurn.of(database)


class _Checkpointer(threading.Thread):
    """Passive WAL checkpoints of one SQLite file, on its own connection, while the engine lives.

    SQLite releases the GIL while it copies and syncs, so the event loop keeps serving. The
    thread holds only a weak reference to the engine and ends once the engine is gone.
    """

    def __init__(self, engine: sa.Engine, path: str) -> None:
        super().__init__(name="sqlite-checkpoint", daemon=True)
        self._engine, self._path = weakref.ref(engine), path

    def run(self) -> None:
        try:
            # mode=rw: never create a file (a test may have removed the database already).
            connection = sqlite3.connect(f"file:{self._path}?mode=rw", uri=True, timeout=1)
        except sqlite3.Error:
            return
        try:
            while self._engine() is not None:
                checkpoint(connection)
                time.sleep(CHECKPOINT_INTERVAL_S)
        finally:
            connection.close()


def _into_wal(cursor: sqlite3.Cursor, attempts: int = 100) -> None:
    """``PRAGMA journal_mode=WAL``, retried: switching a file into WAL takes an exclusive lock
    without SQLite's busy handler, so two processes opening a new store at once can meet
    "database is locked" (once it is in WAL, the pragma only reads). Bounded: ~5 s."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One passive checkpoint: (busy, WAL frames, frames copied). Errors are skipped: the
    next round or a committing connection's own checkpoint will do it."""
    try:
        busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error:
        return (1, -1, -1)
    return (busy, frames, copied)
