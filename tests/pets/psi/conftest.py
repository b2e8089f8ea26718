"""Helpers for the PSI tests: run both parties over an in-memory channel."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from blindgate.net import Channel, memory_pair
from blindgate.pets.psi import PsiResult, run_psi


def run_pair(
    receiver_keys: Sequence[bytes], sender_keys: Sequence[bytes], **options: Any
) -> tuple[PsiResult, PsiResult]:
    """(receiver's result, sender's result); raises the first party's error if either fails."""
    return run_parties(run_psi, receiver_keys, sender_keys, **options)


def run_parties(
    run: Callable[..., PsiResult], receiver_input: Any, sender_input: Any, **options: Any
) -> tuple[PsiResult, PsiResult]:
    """Both parties of ``run`` (run_psi or run_psi_keyset) over an in-memory channel."""
    left, right = memory_pair(timeout=10)
    outcome: dict[str, Any] = {}

    def sender() -> None:
        try:
            outcome["sender"] = run(left, sender_input, receiver=False, **options)
        except BaseException as exc:
            outcome["sender_error"] = exc
        finally:
            left.close()

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        received = run(right, receiver_input, receiver=True, **options)
    finally:
        right.close()
        thread.join(20)
    assert not thread.is_alive()
    if "sender_error" in outcome:
        raise outcome["sender_error"]
    return received, outcome["sender"]


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
