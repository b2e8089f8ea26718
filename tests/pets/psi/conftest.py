"""Helpers for the PSI tests: run both parties over an in-memory channel."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from blindgate.net import Channel, memory_pair
from blindgate.pets.psi import PsiResult, run_psi

A = TypeVar("A")
B = TypeVar("B")


def run_pair(
    receiver_keys: Sequence[bytes], sender_keys: Sequence[bytes], **options: Any
) -> tuple[PsiResult, PsiResult]:
    """(receiver's result, sender's result); raises the first party's error if either fails."""
    return run_parties(run_psi, receiver_keys, sender_keys, **options)


def run_parties(
    run: Callable[..., PsiResult], receiver_input: Any, sender_input: Any, **options: Any
) -> tuple[PsiResult, PsiResult]:
    """Both parties of ``run`` (run_psi or run_psi_keyset) over an in-memory channel."""
    return both_ends(
        lambda channel: run(channel, receiver_input, receiver=True, **options),
        lambda channel: run(channel, sender_input, receiver=False, **options),
    )


def both_ends(
    here: Callable[[Channel], A], there: Callable[[Channel], B], timeout: float = 10
) -> tuple[A, B]:
    """(here's result, there's result): ``there`` runs in a thread on one end of an in-memory
    channel, ``here`` on the other; each end is closed when its side is done, so a side that
    fails ends the other's waits. Raises here's error first, else there's."""
    here_end, there_end = memory_pair(timeout=timeout)
    outcome: dict[str, Any] = {}

    def other_side() -> None:
        try:
            outcome["result"] = there(there_end)
        except BaseException as exc:
            outcome["error"] = exc
        finally:
            there_end.close()

    thread = threading.Thread(target=other_side, daemon=True)
    thread.start()
    try:
        result = here(here_end)
    finally:
        here_end.close()
        thread.join(2 * timeout)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return result, outcome["result"]


def run_against(peer: Callable[[Channel], None], keys: Sequence[bytes], **options: Any) -> None:
    """Run a real party (receiver unless told) against a hand-written misbehaving ``peer``."""
    left, right = memory_pair(timeout=3)
    thread = threading.Thread(target=lambda: _quietly(peer, left), daemon=True)
    thread.start()
    try:
        run_psi(right, keys, **{"receiver": True, **options})
    finally:
        right.close()
        thread.join(5)


def _quietly(peer: Callable[[Channel], None], channel: Channel) -> None:
    try:
        peer(channel)
    except Exception:
        pass
    finally:
        channel.close()
