"""The gateway's own tables (SQLAlchemy Core): payments, refunds, notifications.

SQLite (WAL, busy timeout) by default, PostgreSQL by URL; the ledger's tables live beside
these on their own ``MetaData`` and are written in the same transactions.

What a row may hold (the gateway is blind): ids, amounts, currencies, the FX quote, the
wallet's pseudonym of the payer, status codes, and ciphertext (envelopes sealed to a
partner). Never a payment code, a name, an IP or any other payer value in clear.

Idempotency rests on unique constraints, not on read-then-write: ``(acquirer_id,
payment_request_id)`` and ``(acquirer_id, refund_request_id)``. Two concurrent duplicates
race to the INSERT; the loser gets an IntegrityError and reads the winner's row.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import threading
import time
import weakref
from typing import Any

import sqlalchemy as sa

from blindgate.gateway import ledger

metadata = sa.MetaData()

# Payment status: PROCESSING (asked the wallet, no answer yet: "U"), SUCCESS, FAIL, CANCELLED.
PROCESSING, SUCCESS, FAIL, CANCELLED = "PROCESSING", "SUCCESS", "FAIL", "CANCELLED"

payments = sa.Table(
    "gw_payments",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("payment_request_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("wallet_currency", sa.String(3), nullable=False),
    sa.Column("wallet_amount", sa.BigInteger, nullable=False),
    sa.Column("quote_id", sa.String(40), nullable=False),
    sa.Column("fx_rate", sa.String(40), nullable=False),
    sa.Column("quote_expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result_code", sa.String(40), nullable=False),
    sa.Column("pseudonym", sa.String(80), nullable=True, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),  # the wallet's customerId, sealed to the acquirer
    sa.Column("wallet_payment_id", sa.String(64), nullable=True),
    sa.Column("notify_url", sa.String(1024), nullable=True),
    sa.Column("refunded", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("acquirer_id", "payment_request_id", name="uq_gw_payment_request"),
)

refunds = sa.Table(
    "gw_refunds",
    metadata,
    sa.Column("refund_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("refund_request_id", sa.String(64), nullable=False),
    sa.Column("payment_id", sa.String(40), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result_code", sa.String(40), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("acquirer_id", "refund_request_id", name="uq_gw_refund_request"),
)

# Outbox of payment-result notifications: written in the payment's own transaction.
notifications = sa.Table(
    "gw_notifications",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # ids, amounts, result, sealed customerId
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
)


# A committing connection checkpoints the WAL itself only past this many pages: a safety net.
# Normally `_Checkpointer` has done it long before, off the event loop (module docstring).
WAL_AUTOCHECKPOINT_PAGES = 10_000
CHECKPOINT_INTERVAL_S = 0.2


def open_database(url: str) -> sa.Engine:
    """An engine with every table (the gateway's and the ledger's) created if absent.

    SQLite: WAL with ``synchronous=NORMAL`` (a committed transaction survives a crash of the
    process: it is in the WAL, in the operating system's hands). A checkpoint (copying the WAL
    back into the database, with its fsyncs) used to run inside every thousandth page's COMMIT,
    on the event loop: about 0.3 ms of a payment's wall time. A thread now runs passive
    checkpoints beside it (`_Checkpointer`); passive checkpoints never block a writer or a
    reader, and only ever copy committed pages, so no guarantee changes.
    """
    if url.startswith("sqlite"):
        connect_args: dict[str, object] = {"timeout": 30, "check_same_thread": False}
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            connect_args["factory"] = TakesTurnsToWrite
        engine = sa.create_engine(url, connect_args=connect_args)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cursor.close()

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
        engine = sa.create_engine(url, pool_size=10, max_overflow=10)
    metadata.create_all(engine)
    ledger.create_tables(engine)
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:" and not database.startswith("file:"):
        _Checkpointer(engine, os.path.abspath(database)).start()
    return engine


_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
TURN_WAIT_S = 5.0  # then SQLite's own busy timeout decides, as without the turns
TURN_POLL_S = 0.0001


class TakesTurnsToWrite(sqlite3.Connection):
    """A SQLite connection that waits for its turn to write on a lock file beside the database.

    SQLite lets one writer in at a time and makes the others sleep 1, 2, 5, 10... ms between
    tries; two gateway processes on one file lost much of their time there (and a sleep stalls
    the whole event loop). Before a transaction's first write the connection takes the lock
    file's exclusive flock, polled every 0.1 ms, and gives it back once the COMMIT or ROLLBACK
    is done, so the next writer goes in at once. It only orders writers: SQLite's own locking
    still decides, and past `TURN_WAIT_S` a writer goes ahead without its turn (two
    connections written in turn by one thread must not wait on each other for ever).
    """

    def __init__(self, database: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        try:
            self._turns = os.open(f"{os.fspath(database)}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:  # a directory we may not write to: no turns, SQLite's own waits
            self._turns = -1
        self._holding = False

    def take_turn(self) -> None:
        deadline = time.monotonic() + TURN_WAIT_S
        while not self._holding and self._turns >= 0:
            try:
                fcntl.flock(self._turns, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._holding = True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return
                time.sleep(TURN_POLL_S)

    def _give_turn_back(self) -> None:
        if self._holding:
            fcntl.flock(self._turns, fcntl.LOCK_UN)
            self._holding = False

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
            if self._turns >= 0:
                with contextlib.suppress(OSError):  # closed already
                    os.close(self._turns)


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


def checkpoint(connection: sqlite3.Connection) -> tuple[int, int, int]:
    """One passive checkpoint: (busy, WAL frames, frames copied). Errors are skipped: the
    next round or a committing connection's own checkpoint will do it."""
    try:
        busy, frames, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    except sqlite3.Error:
        return (1, -1, -1)
    return (busy, frames, copied)
