"""IKNP extension: the bit transpose, and the correlation q_j = t_j XOR r_j * Delta."""

from __future__ import annotations

import os

import numpy as np
import pytest

from blindgate.pets.ot.extension import (
    KAPPA,
    ExtensionReceiver,
    ExtensionSender,
    PadHash,
    transpose_bits,
)


@pytest.mark.parametrize("width", [8, 16, 200, 4104])
def test_transpose_matches_the_unpacked_reference(width: int) -> None:
    columns = np.random.default_rng(width).integers(0, 256, (KAPPA, width), dtype=np.uint8)
    reference = np.packbits(np.unpackbits(columns, axis=1).T, axis=1)
    np.testing.assert_array_equal(transpose_bits(columns), reference)


def _base_pairs() -> tuple[list[tuple[bytes, bytes]], np.ndarray, list[bytes]]:
    pairs = [(os.urandom(16), os.urandom(16)) for _ in range(KAPPA)]
    delta = ExtensionSender.random_delta()
    chosen = [pair[int(bit)] for pair, bit in zip(pairs, delta, strict=True)]
    return pairs, delta, chosen


@pytest.mark.parametrize("n", [1, 127, 128, 1000])
def test_extension_gives_delta_correlated_rows(n: int) -> None:
    pairs, delta, chosen = _base_pairs()
    receiver, sender = ExtensionReceiver(pairs), ExtensionSender(delta, chosen)
    for _ in range(2):  # a second call must use fresh PRG output and stay correlated
        choices = np.random.default_rng(n).integers(0, 2, n).astype(np.bool_)
        t_rows, message = receiver.choose(choices)
        q_rows = sender.absorb(message, n)
        expected = t_rows ^ (choices[:, None] * sender.delta[None, :]).astype(np.uint8)
        np.testing.assert_array_equal(q_rows, expected)
    assert not np.array_equal(q_rows, t_rows) or not choices.any()


def test_extension_rejects_a_message_of_the_wrong_size() -> None:
    _, delta, chosen = _base_pairs()
    with pytest.raises(ValueError, match="expected"):
        ExtensionSender(delta, chosen).absorb(bytes(10), 128)


def test_pads_depend_on_row_and_tweak_and_are_deterministic() -> None:
    hasher = PadHash()
    rows = np.frombuffer(os.urandom(4 * 16), dtype=np.uint8).reshape(4, 16)
    first = hasher.pads(rows, 7, 40)
    assert first.shape == (4, 40)
    np.testing.assert_array_equal(first, hasher.pads(rows, 7, 40))
    assert not np.array_equal(first, hasher.pads(rows, 8, 40))
    assert len({bytes(row) for row in first}) == 4
