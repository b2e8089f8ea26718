"""What an agent remembers of the payments it handled: its own record, never the gateway's word.

The agent trusts only what its own partner holds, and the gateway may lie about anything it
relays. So each agent keeps, in a SQLite file in its state folder (it survives a restart):

- the acquirer's agent, one row per payment it forwarded (`Forwarded`): the second it sealed
  the payer's fields at (so the seal context, `blindgate.api.contexts.seal_context`) and the
  ``paymentNotifyUrl`` that its own merchant gave in that pay request.
  It opens a ``customerId`` only under a context found here, and it delivers a notification
  only for a payment found here, only to that URL, and only until the backend acknowledged
  one (`Journal.notified`): a gateway that names another URL, another payment, or sends the
  same notification again gets nothing opened and nothing sent;
- the wallet's agent, one row per payment it executed (`Executed`): the gateway's payment id,
  the acquirer and the seal context the payer's fields were opened under. A seal context is
  opened for one payment only (the context is unique here), so a sealed payment code re-sent
  under a new gateway request id is refused before anything is opened or debited; refunds,
  cancels and inquiries seal their answers to the acquirer and context recorded here, never
  to those the gateway names.

Bounds: a context carries the time it was sealed at (`blindgate.api.contexts.seal_context`) and
the wallet's agent refuses one older than `FRESH_S`, so a context outside that window can never
be replayed even where its row is gone. Rows are kept for the payment's lifecycle (refunds come
later), one per payment. Writes are single statements in autocommit, each durable on return.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from blindgate.agent.errors import AgentError

# How old a sealed context may be when the wallet's agent opens it for a payment: the gateway
# forwards a pay at once (its wallet timeout is seconds), so minutes leave room for clock skew.
FRESH_S = 600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS forwarded (
    request_id TEXT PRIMARY KEY,
    sealed_at INTEGER,
    notify_url TEXT,
    notified INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS executed (
    payment_id TEXT PRIMARY KEY,
    acquirer_id TEXT NOT NULL,
    context TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
"""


class ContextReused(AgentError):
    """A seal context was opened for another payment already: a replay."""


@dataclass(frozen=True)
class Forwarded:
    request_id: str
    sealed_at: int | None  # None: the agent sealed nothing (a merchant-presented order code)
    notify_url: str | None
    notified: bool


@dataclass(frozen=True)
class Executed:
    payment_id: str
    acquirer_id: str
    context: str
    created_at: float  # when this agent first executed it: the payment's time, for its scope


class Journal:
    """One agent's record (see the module docstring). Safe to share across the event loop's tasks."""

    def __init__(self, path: Path | str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)

    # --- the acquirer's agent ---------------------------------------------------------------

    def forwarding(self, request_id: str, sealed_at: int | None, notify_url: str | None) -> Forwarded:
        """Record a pay about to be forwarded; a retry keeps what the first one recorded."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO forwarded (request_id, sealed_at, notify_url, created_at) "
                "VALUES (?, ?, ?, ?)",
                (request_id, sealed_at, notify_url, int(time.time())),
            )
        found = self.forwarded(request_id)
        assert found is not None
        return found

    def forwarded(self, request_id: str) -> Forwarded | None:
        with self._lock:
            row = self._db.execute(
                "SELECT request_id, sealed_at, notify_url, notified FROM forwarded WHERE request_id = ?",
                (request_id,),
            ).fetchone()
        return None if row is None else Forwarded(row[0], row[1], row[2], bool(row[3]))

    def notified(self, request_id: str) -> None:
        """The backend acknowledged this payment's notification: none is delivered again."""
        with self._lock:
            self._db.execute("UPDATE forwarded SET notified = 1 WHERE request_id = ?", (request_id,))

    # --- the wallet's agent -----------------------------------------------------------------

    def executing(self, payment_id: str, acquirer_id: str, context: str, at: float | None = None) -> Executed:
        """Record a payment about to be executed under ``context``; the same payment again is
        fine (the gateway retries), the same context for another payment is `ContextReused`."""
        # Already recorded (the IntegrityError): whether for this payment is checked below.
        with self._lock, contextlib.suppress(sqlite3.IntegrityError):
            self._db.execute(
                "INSERT INTO executed (payment_id, acquirer_id, context, created_at) VALUES (?, ?, ?, ?)",
                (payment_id, acquirer_id, context, time.time() if at is None else at),
            )
        found = self.executed(payment_id)
        if found is None or found.context != context or found.acquirer_id != acquirer_id:
            raise ContextReused("this seal context was used for another payment")
        return found

    def executed(self, payment_id: str) -> Executed | None:
        with self._lock:
            row = self._db.execute(
                "SELECT payment_id, acquirer_id, context, created_at FROM executed WHERE payment_id = ?",
                (payment_id,),
            ).fetchone()
        return None if row is None else Executed(*row)

    def close(self) -> None:
        with self._lock:
            self._db.close()
