"""Group commit: the pay path's transactions that reach the store together commit together.

On SQLite every transaction pays for its COMMIT (~0.1 ms: the WAL frames of every page it
changed), for its turn at the single write lock, and, when another gateway process has
committed since, for a cold start: SQLite drops its whole page cache when it sees another
connection's commit, so the transaction reads its B-tree pages again (~65 us). Two worker
processes that take turns pay the cold start on almost every transaction. `GroupCommit` runs
the units of work that arrive while the process waits for its turn at the file
(`blindgate.storage.engine.WriterTurn`, awaited without blocking the event loop, so requests
keep being verified and parsed meanwhile) in ONE transaction, in arrival order: one turn, one
cold start and one COMMIT for all of them. The transaction runs on a store thread
(`blindgate.storage.offload`): the units that arrive while it commits make the next group.

What a caller sees does not change. A unit is a plain function of the connection, run with no
await inside (as every store transaction of the gateway already is), and its result or its
exception comes back to its own caller only. If any unit of a group raises, the group is
rolled back whole and every unit runs again in a transaction of its own, as without grouping,
so one payment's duplicate key or refused posting touches no other payment. A group commits
before any of its callers resumes: nobody answers on a write that is not committed.

PostgreSQL groups too: two worker processes measured 1,023 payments/s grouped against 535/s
unit by unit (2026-12-06, `benchmarks/payments.py`), the commits and the store threads' hand-offs
being per group. There workers write side by side and rows are locked one by one, so a group
must not wait on a lock for long: it would hold up every payment in it, and two groups that
lock the same rows in opposite orders (one payer paying on two workers at once) would wait for
each other. A group's transaction therefore waits at most `GROUP_LOCK_WAIT_MS` for any lock;
when it fails, for that or any other reason, each of its callers runs its unit again in a
transaction of its own, with the store's full lock timeout: only a unit that needs a locked
row waits for it, and the groups after it do not wait behind it. SQLite has one writer,
so there the units of a failed group run again one after the other, still on the turn.

On PostgreSQL no turn gathers a group: it would start with whatever has arrived, a few units.
While the process is busy (its last group committed less than `BUSY_S` ago), a group first
lets the event loop run `LINGER_TURNS` more turns: the requests that are ready to add their
units (read, verified, answered by their wallet) do, and the group goes when they have. Fewer,
larger groups mean fewer transactions (BEGIN, the lock bound, COMMIT: round trips) and fewer
hand-offs to a store thread, whose statements each take the GIL back from the busy loop. Turns,
not time: a timed wait (1 ms was tried) left the loop idle when every request in flight waited
for a group, and cost throughput in process (docs/gateway.md). Idle, a unit goes at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from blindgate.ledger.prepared import run_driver_sql
from blindgate.storage.engine import writer_turn
from blindgate.storage.offload import Offload

T = TypeVar("T")
Work = Callable[[sa.Connection], Any]
Outcome = tuple[Any, Exception | None]  # a unit's result, or the exception it raised

MAX_GROUP = 64  # bound the transaction a group makes (and the work a rollback redoes)
# A process that has just committed a group lets this long pass before it asks for the turn
# again: another process polls for it on its loop's millisecond timer, and would otherwise
# find it taken again almost every time (flock is not fair), its requests waiting group
# after group. Meanwhile this process's next group fills.
YIELD_S = 0.001
# PostgreSQL: the longest a group's transaction waits on another transaction's lock before it
# gives way to its units one by one (a committing group holds its rows for a few milliseconds).
GROUP_LOCK_WAIT_MS = 50
_BOUNDED_WAIT_SQL = f"SET LOCAL lock_timeout = {GROUP_LOCK_WAIT_MS}"
# PostgreSQL: how many turns of the loop a group lets pass for more units while the process is
# busy, and what counts as busy (module docstring).
LINGER_TURNS = 16
BUSY_S = 0.02
_ALONE = object()  # a unit's outcome that says: its group failed, run it in its own transaction


class GroupCommit:
    def __init__(self, db: Offload, *, enabled: bool = True) -> None:
        self.db, self.engine = db, db.engine
        self.enabled = enabled  # off: every unit in a transaction of its own
        self._bounded_wait = self.engine.dialect.name == "postgresql"
        self._turn = writer_turn(self.engine)
        self._waiting: list[tuple[Work, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._last_commit = 0.0  # time.monotonic() when this process's last group was done
        self.groups = 0  # transactions committed for more than one unit
        self.grouped = 0  # units committed in them
        self.rolled_back = 0  # groups that failed, their units run again each alone

    async def run(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work(conn)`` in a transaction, possibly shared with other units; its result."""
        if not self.enabled:
            return await self.db.transaction(work)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._waiting.append((work, done))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_while_waiting())
        outcome = await done
        if outcome is _ALONE:
            return await self.db.transaction(work)
        return outcome

    async def _flush_while_waiting(self) -> None:
        """Commit what waits, group after group: units that arrive while one group commits (on a
        store thread) make the next."""
        try:
            while self._waiting:
                await self._flush_on_turn()
        except BaseException:  # cancelled (the loop is closing): nobody may hang
            for _, done in self._waiting:
                done.cancel()
            self._waiting = []
            raise
        finally:
            self._flusher = None

    async def _flush_on_turn(self) -> None:
        since = time.monotonic() - self._last_commit
        if self._turn is not None:
            if since < YIELD_S:
                await asyncio.sleep(YIELD_S - since)
            await self._turn.take_async()
        elif since < BUSY_S:
            for _ in range(LINGER_TURNS):
                await asyncio.sleep(0)
        try:
            group = [(work, done) for work, done in self._waiting if not done.cancelled()]
            self._waiting = []
            outcomes = await self.db.run(self._commit_all, [work for work, _ in group])
        finally:
            if self._turn is not None:
                self._turn.give_back()
            self._last_commit = time.monotonic()
        for (_, done), outcome in zip(group, outcomes, strict=True):
            if done.cancelled():
                continue
            value, error = outcome if outcome is not None else (_ALONE, None)
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(value)

    def _commit_all(self, works: list[Work]) -> list[Outcome | None]:
        """On a store thread: every unit's (result, exception), in groups of at most `MAX_GROUP`;
        None for a unit that its caller runs again alone (PostgreSQL)."""
        outcomes: list[Outcome | None] = []
        for start in range(0, len(works), MAX_GROUP):
            outcomes += self._commit(works[start : start + MAX_GROUP])
        return outcomes

    def _commit(self, group: list[Work]) -> Sequence[Outcome | None]:
        if self._bounded_wait:  # one try together; after that each caller runs its own unit
            together = self._together(group)
            return [None] * len(group) if together is None else together
        if len(group) > 1:
            together = self._together(group)
            if together is not None:
                return together
        return [self._alone(work) for work in group]

    def _alone(self, work: Work) -> Outcome:
        try:
            with self.engine.begin() as conn:
                return work(conn), None
        except Exception as exc:  # the caller's own failure, raised where it awaits
            return None, exc

    def _together(self, group: list[Work]) -> list[Outcome] | None:
        try:
            with self.engine.begin() as conn:
                if self._bounded_wait:
                    run_driver_sql(conn, _BOUNDED_WAIT_SQL, ()).close()
                values = [work(conn) for work in group]
        except Exception:  # rolled back whole: each unit runs again alone
            self.rolled_back += 1
            return None
        if len(group) > 1:
            self.groups += 1
            self.grouped += len(group)
        return [(value, None) for value in values]
