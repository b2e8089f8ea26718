"""`GroupCommit`: units that reach the store together commit together, and fail alone."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from blindgate.gateway import group_commit
from blindgate.gateway.group_commit import GroupCommit
from blindgate.storage.migrate import open_store
from blindgate.storage.offload import Offload
from blindgate.storage.schema import notifications

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    created = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    yield created
    created.dispose()


def insert(payment_id: str, fail_after: bool = False) -> Any:
    def work(conn: sa.Connection) -> str:
        conn.execute(
            notifications.insert(),
            {"payment_id": payment_id, "acquirer_id": "ACQ", "body": "{}", "attempts": 0, "next_at": NOW},
        )
        if fail_after:
            raise LookupError(f"refused after writing {payment_id}")
        return payment_id

    return work


def stored(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(notifications.c.payment_id)).scalars())


async def together(group: GroupCommit, *units: Any) -> list[Any]:
    return await asyncio.gather(*(group.run(unit) for unit in units), return_exceptions=True)


def test_units_that_arrive_together_commit_in_one_transaction(engine: sa.Engine) -> None:
    group = GroupCommit(Offload(engine))
    commits: list[object] = []
    sa.event.listen(engine, "commit", commits.append)
    results = asyncio.run(together(group, *(insert(f"P{i}") for i in range(5))))
    assert results == [f"P{i}" for i in range(5)]
    assert stored(engine) == [f"P{i}" for i in range(5)]
    assert (group.groups, group.grouped, len(commits)) == (1, 5, 1)


def test_a_duplicate_fails_alone_and_the_others_commit(engine: sa.Engine) -> None:
    group = GroupCommit(Offload(engine))
    results = asyncio.run(together(group, insert("P1"), insert("P2"), insert("P1"), insert("P3")))
    assert results[:2] == ["P1", "P2"] and results[3] == "P3"
    assert isinstance(results[2], sa.exc.IntegrityError)
    assert stored(engine) == ["P1", "P2", "P3"]
    assert group.groups == 0  # the group was rolled back and each unit ran alone


def test_a_unit_that_fails_after_writing_leaves_nothing_of_its_own(engine: sa.Engine) -> None:
    group = GroupCommit(Offload(engine))
    results = asyncio.run(together(group, insert("P1"), insert("P2", fail_after=True), insert("P3")))
    assert results[0] == "P1" and results[2] == "P3"
    assert isinstance(results[1], LookupError)
    assert stored(engine) == ["P1", "P3"]


def test_a_cancelled_caller_s_unit_never_runs(engine: sa.Engine) -> None:
    group = GroupCommit(Offload(engine))

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(group.run(insert("P1")))
        second = asyncio.ensure_future(group.run(insert("P2")))
        await asyncio.sleep(0)  # both queued, the flush not run yet
        second.cancel()
        return await asyncio.gather(first, second, return_exceptions=True)

    first, second = asyncio.run(scenario())
    assert first == "P1" and isinstance(second, asyncio.CancelledError)
    assert stored(engine) == ["P1"]


def test_the_group_waits_for_another_process_s_turn_without_blocking_the_loop(engine: sa.Engine) -> None:
    group = GroupCommit(Offload(engine))
    database = engine.url.database
    assert database is not None
    other = os.open(f"{database}-writer.lock", os.O_RDWR)  # another process's turn
    fcntl.flock(other, fcntl.LOCK_EX)

    async def scenario() -> list[Any]:
        unit = asyncio.ensure_future(group.run(insert("P1")))
        for _ in range(20):  # this loop runs while the unit waits for the turn (a blocking
            await asyncio.sleep(0.001)  # wait would stall it until the turn is forced, 5 s)
        assert not unit.done() and stored(engine) == []
        fcntl.flock(other, fcntl.LOCK_UN)
        return [await unit]

    try:
        results = asyncio.run(scenario())
    finally:
        os.close(other)
    assert results == ["P1"] and stored(engine) == ["P1"]


@pytest.fixture
def pg_engine(pg_schema_url: str) -> Iterator[sa.Engine]:
    created = open_store(pg_schema_url)
    yield created
    created.dispose()


@pytest.mark.postgres
def test_postgresql_groups_units_too(pg_engine: sa.Engine) -> None:
    group = GroupCommit(Offload(pg_engine))
    commits: list[object] = []
    sa.event.listen(pg_engine, "commit", commits.append)
    assert asyncio.run(together(group, *(insert(f"P{i}") for i in range(5)))) == [f"P{i}" for i in range(5)]
    assert (group.groups, group.grouped, len(commits)) == (1, 5, 1)
    assert stored(pg_engine) == [f"P{i}" for i in range(5)]


@pytest.mark.postgres
def test_postgresql_a_busy_process_s_group_waits_for_more_units(
    pg_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after a commit, the next group lets the loop turn: a unit added meanwhile joins it.
    Idle, the first unit goes at once and the next one makes a group of its own."""
    monkeypatch.setattr(group_commit, "BUSY_S", 60.0)  # the warm-up's commit counts as recent

    async def one_then_another(group: GroupCommit, name: str) -> None:
        first = asyncio.ensure_future(group.run(insert(f"{name}-1")))
        await asyncio.sleep(0)  # the first unit's group is about to start: lingering, or not
        await asyncio.gather(first, group.run(insert(f"{name}-2")))

    busy = GroupCommit(Offload(pg_engine))
    asyncio.run(busy.run(insert("warm")))  # a commit just now: the process is busy
    asyncio.run(one_then_another(busy, "busy"))
    assert (busy.groups, busy.grouped) == (1, 2)
    monkeypatch.setattr(group_commit, "BUSY_S", 0.0)  # idle: no last commit is recent enough
    idle = GroupCommit(Offload(pg_engine))
    asyncio.run(one_then_another(idle, "idle"))
    assert (idle.groups, idle.grouped) == (0, 0)
    assert stored(pg_engine) == ["busy-1", "busy-2", "idle-1", "idle-2", "warm"]


@pytest.mark.postgres
def test_postgresql_a_duplicate_fails_alone_and_the_others_commit(pg_engine: sa.Engine) -> None:
    group = GroupCommit(Offload(pg_engine))
    results = asyncio.run(together(group, insert("P1"), insert("P2"), insert("P1"), insert("P3")))
    assert results[:2] == ["P1", "P2"] and results[3] == "P3"
    assert isinstance(results[2], sa.exc.IntegrityError)
    assert (stored(pg_engine), group.rolled_back) == (["P1", "P2", "P3"], 1)


@pytest.mark.postgres
def test_postgresql_a_row_locked_elsewhere_holds_up_only_its_own_unit(pg_engine: sa.Engine) -> None:
    """Another transaction holds P2's key (a worker's group, an operator's session): the group
    gives way within its short lock wait, P1 and P3 commit while P2 still waits, and P2 commits
    once the lock is let go. Waiting with the store's whole lock timeout, the group would hold
    P1 and P3 for as long as the lock is held."""
    group = GroupCommit(Offload(pg_engine))

    async def scenario(holder: sa.Connection) -> tuple[list[str], list[Any]]:
        units = [asyncio.ensure_future(group.run(insert(f"P{i}"))) for i in (1, 2, 3)]
        for _ in range(1000):  # they commit after one short lock wait (50 ms); 10 s only bounds a failure
            await asyncio.sleep(0.01)
            if units[0].done() and units[2].done():
                break
        while_locked = stored(pg_engine)
        holder.rollback()
        return while_locked, await asyncio.gather(*units)

    with pg_engine.connect() as holder:
        holder.execute(
            notifications.insert(),
            {"payment_id": "P2", "acquirer_id": "ACQ", "body": "{}", "attempts": 0, "next_at": NOW},
        )  # uncommitted: P2's unique key is held until this transaction ends
        while_locked, results = asyncio.run(scenario(holder))
    assert while_locked == ["P1", "P3"]
    assert results == ["P1", "P2", "P3"] and stored(pg_engine) == ["P1", "P2", "P3"]
    assert group.rolled_back == 1
