"""Database work off the event loop: a bounded pool of threads that runs the store's calls.

Why: the gateway's requests share one event loop per process. A statement that waits on a
lock — another connection's write transaction on SQLite, a row or table lock on PostgreSQL
(closing a business day, an operator's session) — used to stop every request of the process,
``/health`` included, for as long as it waited. Here every store call runs on one of a few
threads: while one waits, the loop goes on verifying, routing and answering, and the calls that
need no locked row run on the other threads (SQLite in WAL reads beside a writer; PostgreSQL
locks rows, not the table).

Bounds, so that nothing waits forever and nothing grows without limit:

- **threads**: at most ``threads`` calls run at once (4 by default; the engine's pool is larger);
  the others queue in the executor. The queue is bounded by the requests in flight, each of
  which has at most one store call outstanding, and those by the server's connection cap.
- **time**: a waiting statement ends at the engine's lock timeout (`open_engine`'s
  ``lock_timeout_s``: SQLite's busy timeout, PostgreSQL's ``lock_timeout`` and
  ``statement_timeout``), raising in its thread; the caller gets that exception where it awaits,
  as it would have on the loop. A call is never abandoned while it runs: a write whose outcome
  the caller stopped waiting for would be a payment in an unknown state for no reason.

The threads run plain synchronous functions of the engine (`blindgate.gateway.repository` and
the ledger are written that way and stay so: commands and tests call them directly). A
transaction is one call: `transaction` runs ``work(conn)`` inside ``engine.begin()`` on one
thread, so a transaction never spans an ``await``.

Cost: a hand-off is a few tens of microseconds (a future, a thread wake-up, a loop wake-up).
The pay path pays it once per group of payments that commit together
(`blindgate.gateway.group_commit`), not once per payment.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
P = ParamSpec("P")

# More threads let more calls wait on locks at once; fewer contend less for the GIL with the event
# loop (each statement's round trip hands it back and forth): on PostgreSQL, with every payment's
# transactions alone, two workers measured 320 payments/s with 2 threads each, 294 with 8, and 372
# with the calls on the loop. The pay path's group commit makes the hand-offs per group (1,055-
# 1,166/s grouped; docs/store.md).
DEFAULT_THREADS = 4


class Offload:
    """Runs store calls on ``threads`` threads; `run` and `transaction` are awaited on the loop."""

    def __init__(self, engine: sa.Engine, threads: int = DEFAULT_THREADS) -> None:
        if threads < 1:
            raise ValueError("an offload needs at least one thread")
        self.engine = engine
        self.threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="blindgate-store")

    async def run(self, call: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``call(*args, **kwargs)`` on a store thread; its result, or its exception, here."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args, **kwargs))

    async def transaction(self, work: Callable[[sa.Connection], T]) -> T:
        """``work(conn)`` in one transaction (committed, or rolled back if it raises) on a store thread."""
        return await self.run(self._in_transaction, work)

    def _in_transaction(self, work: Callable[[sa.Connection], T]) -> T:
        with self.engine.begin() as conn:
            return work(conn)

    def close(self) -> None:
        """Let the running calls finish, start no new one."""
        self._executor.shutdown(wait=True, cancel_futures=True)
