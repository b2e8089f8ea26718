"""Chou–Orlandi base OT over an in-memory channel."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import pytest

from blindgate.crypto import group
from blindgate.net import MalformedFrame, memory_pair
from blindgate.pets.ot.base import receive_base_ots, send_base_ots


def _run_pair(count: int, choices: list[int]) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    left, right = memory_pair(timeout=10)
    result: dict[str, Any] = {}
    sender = threading.Thread(target=lambda: result.update(pairs=send_base_ots(left, count)))
    sender.start()
    chosen = receive_base_ots(right, choices)
    sender.join(10)
    return result["pairs"], chosen


def test_receiver_gets_exactly_the_chosen_keys() -> None:
    choices = [secrets.randbits(1) for _ in range(128)]
    pairs, chosen = _run_pair(128, choices)
    assert len(pairs) == len(chosen) == 128
    for (key0, key1), choice, key in zip(pairs, choices, chosen, strict=True):
        assert len(key0) == len(key1) == 32 and key0 != key1
        assert key == (key1 if choice else key0)
        assert key != (key0 if choice else key1)
    assert len({k for pair in pairs for k in pair}) == 256  # every key distinct


def test_fresh_keys_every_run() -> None:
    first, _ = _run_pair(4, [0, 1, 0, 1])
    second, _ = _run_pair(4, [0, 1, 0, 1])
    assert not {k for p in first for k in p} & {k for p in second for k in p}


def test_invalid_element_from_receiver_is_rejected() -> None:
    left, right = memory_pair(timeout=5)
    failures: list[BaseException] = []

    def run_sender() -> None:
        try:
            send_base_ots(left, 2)
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=run_sender)
    thread.start()
    right.recv()
    right.send(group.GENERATOR + bytes.fromhex("ff" * 31 + "7f"))  # second one is non-canonical
    thread.join(5)
    assert len(failures) == 1 and isinstance(failures[0], MalformedFrame)


def test_identity_from_sender_is_rejected() -> None:
    left, right = memory_pair(timeout=5)
    left.send(group.IDENTITY)
    with pytest.raises(MalformedFrame):
        receive_base_ots(right, [0, 1])


def test_wrong_frame_length_and_bad_choices() -> None:
    with pytest.raises(ValueError):
        receive_base_ots(memory_pair()[0], [0, 2])
    with pytest.raises(ValueError):
        send_base_ots(memory_pair()[0], 0)
