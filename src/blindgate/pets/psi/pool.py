"""Spreading per-item public-key work (hash-to-group, scalar multiplication) over processes.

``ordered_map`` keeps at most ``window`` batches in flight and yields results in input
order, so memory stays a bounded multiple of one batch. Small jobs run inline: starting
worker processes costs more than a few thousand scalar multiplications.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

INLINE_BELOW = 16384  # items; below this a pool costs more than it saves


class InlineExecutor(concurrent.futures.Executor):
    """Runs each task at once in the caller's thread (same interface as a process pool)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def make_executor(items: int, workers: int | None = None) -> concurrent.futures.Executor:
    """A process pool for big jobs (``spawn``: safe beside the channel's threads), else inline."""
    workers = workers or os.cpu_count() or 1
    if items < INLINE_BELOW or workers <= 1:
        return InlineExecutor()
    return concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def ordered_map(
    executor: concurrent.futures.Executor,
    fn: Callable[..., Any],
    batches: Iterable[Any],
    *args: Any,
    window: int = 8,
) -> Iterator[Any]:
    """``fn(batch, *args)`` for each batch, at most ``window`` in flight, results in order."""
    assert window > 0
    pending: deque[concurrent.futures.Future[Any]] = deque()
    for batch in batches:
        pending.append(executor.submit(fn, batch, *args))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


__all__ = ["INLINE_BELOW", "InlineExecutor", "make_executor", "ordered_map"]
