"""Spreading per-item public-key work (hash-to-group, scalar multiplication) over processes.

``ordered_map`` keeps at most ``window`` batches in flight and yields results in input
order, so memory stays a bounded multiple of one batch. Small jobs run inline: starting
worker processes costs more than a few thousand scalar multiplications.

With a Ray address (``--ray ADDRESS`` or ``RAY_ADDRESS``; the optional ``ray`` extra)
the same batches go to a Ray cluster instead, through :class:`RayExecutor`: the tasks
are the same module-level functions, so the results are the same. Ray is an existing
engine, not a scheduler of ours; its workers must be able to import ``blindgate`` (it
installed on every node, or shipped with a Ray runtime environment).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from blindgate.pets.psi.errors import PsiError

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


class RayExecutor(concurrent.futures.Executor):
    """Submits each task as a Ray task; connects to ``address`` unless Ray is already initialised.

    A Ray task's exception comes back wrapped (``RayTaskError``); ``submit`` unwraps it, so
    a caller sees the same exception (e.g. an invalid group element) as with a process pool.
    """

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError as exc:
            raise PsiError(
                "a Ray address was given but ray is not installed (pip install 'blindgate[ray]')"
            ) from exc
        self._ray = ray
        self._owns_connection = not ray.is_initialized()
        if self._owns_connection:
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
        self._remote: dict[Callable[..., Any], Any] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(fn)
        inner: concurrent.futures.Future[Any] = remote.remote(*args, **kwargs).future()
        outer: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def settle(done: concurrent.futures.Future[Any]) -> None:
            error = done.exception()
            if error is None:
                outer.set_result(done.result())
            else:
                cause = getattr(error, "cause", None)
                outer.set_exception(cause if isinstance(cause, BaseException) else error)

        inner.add_done_callback(settle)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._owns_connection and self._ray.is_initialized():
            self._ray.shutdown()


def ray_address(given: str | None) -> str | None:
    """The Ray address to use: the one given, else ``RAY_ADDRESS`` from the environment, else none."""
    return given or os.environ.get("RAY_ADDRESS") or None


def make_executor(
    items: int, workers: int | None = None, ray: str | None = None
) -> concurrent.futures.Executor:
    """Ray when an address is given; else a process pool for big jobs (``spawn``), else inline."""
    if ray:
        return RayExecutor(ray)
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


__all__ = ["INLINE_BELOW", "InlineExecutor", "RayExecutor", "make_executor", "ordered_map", "ray_address"]
