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

Grouping is on for SQLite only. On PostgreSQL workers write in parallel, and a group holding
several payers' row locks at once could deadlock with another worker's group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa

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


class GroupCommit:
    def __init__(self, db: Offload, *, enabled: bool | None = None) -> None:
        self.db, self.engine = db, db.engine
        self.enabled = self.engine.dialect.name == "sqlite" if enabled is None else enabled
        self._turn = writer_turn(self.engine)
        self._waiting: list[tuple[Work, asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._last_commit = 0.0  # time.monotonic() when this process's last group was done
        self.groups = 0  # transactions committed for more than one unit
        self.grouped = 0  # units committed in them

    async def run(self, work: Callable[[sa.Connection], T]) -> T:
        """Run ``work(conn)`` in a transaction, possibly shared with other units; its result."""
        if not self.enabled:
            return await self.db.transaction(work)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._waiting.append((work, done))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_while_waiting())
        return await done

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
        if self._turn is not None:
            since = time.monotonic() - self._last_commit
            if since < YIELD_S:
                await asyncio.sleep(YIELD_S - since)
            await self._turn.take_async()
        try:
            group = [(work, done) for work, done in self._waiting if not done.cancelled()]
            self._waiting = []
            outcomes = await self.db.run(self._commit_all, [work for work, _ in group])
        finally:
            if self._turn is not None:
                self._turn.give_back()
            self._last_commit = time.monotonic()
        for (_, done), (value, error) in zip(group, outcomes, strict=True):
            if done.cancelled():
                continue
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(value)

    def _commit_all(self, works: list[Work]) -> list[Outcome]:
        """On a store thread: every unit's (result, exception), in groups of at most `MAX_GROUP`."""
        outcomes: list[Outcome] = []
        for start in range(0, len(works), MAX_GROUP):
            outcomes += self._commit(works[start : start + MAX_GROUP])
        return outcomes

    def _commit(self, group: list[Work]) -> list[Outcome]:
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
                values = [work(conn) for work in group]
        except Exception:  # rolled back whole: each unit runs again alone
            return None
        self.groups += 1
        self.grouped += len(group)
        return [(value, None) for value in values]
