"""The Beneš network: routing gives x[perm] for every permutation we try; bad input is refused."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from blindgate.pets.psi import benes


def _values(size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**63, size, dtype=np.int64)


@pytest.mark.parametrize("k", range(1, 13))
def test_random_permutations_are_routed(k: int) -> None:
    rng = np.random.default_rng(k)
    size = 1 << k
    for _ in range(5):
        perm = rng.permutation(size)
        x = _values(size, rng)
        network = benes.route(perm)
        assert network.bits.shape == (2 * k - 1, size // 2) and network.depth == 2 * k - 1
        np.testing.assert_array_equal(benes.apply(network, x), x[perm])


def test_a_large_random_permutation_is_routed() -> None:
    rng = np.random.default_rng(16)
    perm = rng.permutation(1 << 16)
    x = _values(1 << 16, rng)
    np.testing.assert_array_equal(benes.apply(benes.route(perm), x), x[perm])


@pytest.mark.parametrize(("size", "stride"), [(4, 1), (8, 37)])
def test_permutations_of_small_networks(size: int, stride: int) -> None:
    """All 24 of N = 4; every 37th of the 40,320 of N = 8 (all of them take seconds)."""
    for order in itertools.islice(itertools.permutations(range(size)), 0, None, stride):
        perm = np.array(order)
        np.testing.assert_array_equal(benes.apply(benes.route(perm), np.arange(size) * 10), perm * 10)


@pytest.mark.parametrize("size", [2, 64, 1 << 12])
def test_identity_and_reversal(size: int) -> None:
    x = np.arange(size) + 100
    identity = np.arange(size)
    np.testing.assert_array_equal(benes.apply(benes.route(identity), x), x)
    np.testing.assert_array_equal(benes.apply(benes.route(identity[::-1].copy()), x), x[::-1])


def test_rows_travel_whole() -> None:
    """Axis 0 is switched; the rest of each row goes with it (the protocol's words, or pairs)."""
    rng = np.random.default_rng(7)
    perm = rng.permutation(32)
    rows = rng.integers(0, 1000, (32, 3))
    np.testing.assert_array_equal(benes.apply(benes.route(perm), rows), rows[perm])


def test_unsigned_indices_are_accepted() -> None:
    perm = np.array([3, 0, 2, 1], dtype=np.uint32)
    np.testing.assert_array_equal(benes.apply(benes.route(perm), np.arange(4)), [3, 0, 2, 1])


@pytest.mark.parametrize("level", range(4))
def test_merge_undoes_split(level: int) -> None:
    x = np.arange(32)
    split = benes.split(x, level)
    assert not np.array_equal(split, x)
    np.testing.assert_array_equal(benes.merge(split, level), x)


def test_split_sends_tops_up_and_bottoms_down() -> None:
    # Switch a's outputs sit at (2a, 2a+1); the upper half takes the tops in order.
    np.testing.assert_array_equal(benes.split(np.arange(8), 0), [0, 2, 4, 6, 1, 3, 5, 7])
    np.testing.assert_array_equal(benes.split(np.arange(8), 1), [0, 2, 1, 3, 4, 6, 5, 7])


@pytest.mark.parametrize(
    "perm",
    [
        np.array([0, 0, 1, 2]),  # repeated
        np.array([0, 1, 2, 4]),  # out of range
        np.array([-1, 0, 1, 2]),  # negative
        np.array([0, 1, 2]),  # not a power of two
        np.array([0]),  # one wire: no network
        np.array([], dtype=np.int64),
        np.array([[0, 1], [1, 0]]),  # not one-dimensional
        np.array([0.0, 1.0]),  # not integers
    ],
)
def test_non_permutations_are_refused(perm: np.ndarray) -> None:
    with pytest.raises(ValueError):
        benes.route(perm)


def test_apply_checks_the_length() -> None:
    with pytest.raises(ValueError):
        benes.apply(benes.route(np.arange(8)), np.arange(4))
