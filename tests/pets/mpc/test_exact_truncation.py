"""Dealer-free truncation by the known-MSB rule: floor or floor + 1 for |raw| < 2^62, whatever
the shares, where SecureML's local rule fails; one correlated OT per element, booked."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest

from blindgate.net import MalformedFrame, memory_pair
from blindgate.pets.mpc.dealer_free import DealerFreeTripleSource
from blindgate.pets.mpc.fixed_point import truncate_share
from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor
from tests.pets.mpc.dealer_free.stand_in import StandIn

T = TypeVar("T")
LIMIT = 1 << 62  # the stated range: |raw| < 2^62
RING = 1 << 64
HALF = 1 << 63
RNG = np.random.default_rng(29)
CHOOSER = random.Random(29)  # Python integers: the share intervals reach 2^64


def run_both(program: Callable[[DealerFreeTripleSource, int], T], timeout: float = 20) -> tuple[T, T]:
    """``program(source, party)`` for both parties over an in-memory pair (stand-in base OTs)."""
    channels = memory_pair(timeout)
    sources = [DealerFreeTripleSource(channels[p], p, StandIn()) for p in (0, 1)]
    results: list[Any] = [None, None]
    failures: list[BaseException] = []

    def party(index: int) -> None:
        try:
            results[index] = program(sources[index], index)
        except BaseException as exc:  # re-raised below
            failures.append(exc)
            channels[index].close()

    thread = threading.Thread(target=party, args=(1,))
    thread.start()
    party(0)
    thread.join(timeout)
    if failures:
        raise failures[0]
    return results[0], results[1]


def raw_values() -> list[int]:
    edges = [-LIMIT, -LIMIT + 1, LIMIT - 1, 1 << 61, -(1 << 61), (1 << 61) + 1, -(1 << 61) - 1, 0, 1, -1]
    multiples = [5 << 32, -(7 << 32), 3 << 40, -(1 << 20)]  # divisible by 2^16, 2^20 and 2^32
    spread = RNG.integers(-LIMIT, LIMIT, 300, dtype=np.int64).tolist()
    small = RNG.integers(-(2**40), 2**40, 300, dtype=np.int64).tolist()
    return edges + multiples + spread + small


def adversarial_shares(raw: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """For each raw x, four share pairs: one per pattern of (msb(x0 + 2^62), msb(x1)).

    With y = x + 2^62 in [0, 2^63) and y0 + y1 = y mod 2^64: y0 in [0, y] gives (0, 0),
    (y, 2^63) gives (0, 1), [2^63, y + 2^63] gives (1, 1) and (y + 2^63, 2^64) gives (1, 0).
    """
    first, second = [], []
    for x in raw:
        y = x + LIMIT
        intervals = [(0, y + 1), (y + 1, HALF), (HALF, y + HALF + 1), (y + HALF + 1, RING)]
        for low, high in intervals:
            if low >= high:  # y = 2^63 - 1 leaves (0, 1) and (1, 0) empty
                continue
            y0 = CHOOSER.randrange(low, high)
            first.append((y0 - LIMIT) % RING)
            second.append((y - y0) % RING)
    return np.array(first, dtype=np.uint64), np.array(second, dtype=np.uint64)


def exact(first: np.ndarray, second: np.ndarray, bits: int) -> np.ndarray:
    shares = (first, second)
    results = run_both(lambda source, party: source.exact_truncation(shares[party], bits))
    opened: np.ndarray = (results[0] + results[1]).view(np.int64)
    return opened


def local(first: np.ndarray, second: np.ndarray, bits: int) -> np.ndarray:
    opened: np.ndarray = (truncate_share(first, bits, 0) + truncate_share(second, bits, 1)).view(np.int64)
    return opened


def msb_patterns(first: np.ndarray, second: np.ndarray) -> set[tuple[int, int]]:
    shifted = first + np.uint64(LIMIT)
    return set(zip((shifted >> np.uint64(63)).tolist(), (second >> np.uint64(63)).tolist(), strict=True))


@pytest.mark.parametrize("bits", [16, 32, 20])
def test_floor_or_floor_plus_one_for_every_msb_pattern(bits: int) -> None:
    first, second = adversarial_shares(raw_values())
    assert msb_patterns(first, second) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    raw = (first + second).view(np.int64)
    floor = raw >> bits  # arithmetic shift: floor division
    got = exact(first, second, bits)
    assert np.all((got == floor) | (got == floor + 1)), raw[(got != floor) & (got != floor + 1)][:5]
    divisible = raw % (1 << bits) == 0
    assert divisible.sum() >= 16  # 0 and the multiples, four share pairs each
    np.testing.assert_array_equal(got[divisible], floor[divisible])  # nothing to round


def test_uniform_shares_round_without_bias() -> None:
    raw = np.full(20000, (5 << 16) + (1 << 14), dtype=np.int64)  # 5.25 ulp after the shift
    second = RNG.integers(0, 2**64, raw.shape, dtype=np.uint64)
    got = exact(raw.view(np.uint64) - second, second, 16)
    assert set(np.unique(got).tolist()) <= {5, 6}
    assert abs(got.mean() - 5.25) < 0.02  # +1 with probability 1/4: 18 standard deviations apart


def test_shares_that_break_the_local_rule_are_truncated_exactly() -> None:
    # x0 = -2^63 as a signed share: the signed shares sum to x - 2^64, so SecureML's rule is
    # off by 2^(64 - bits); near the range bound a uniform share does this a quarter of the time.
    raw = np.array([1 << 61, (1 << 61) + 12345, LIMIT - 1, 7 << 16], dtype=np.int64)
    first = np.full(raw.shape, HALF, dtype=np.uint64)
    second = raw.view(np.uint64) - first
    floor = raw >> 16
    wrong = local(first, second, 16)
    assert np.all(np.abs(wrong - floor) >= 1 << 47)  # off by about 2^48, not by one ulp
    got = exact(first, second, 16)
    assert np.all((got == floor) | (got == floor + 1))


def test_the_bit_products_sum_to_the_and_of_the_bits_for_every_width() -> None:
    mine = np.array([0, 0, 1, 1] * 50, dtype=np.bool_)
    theirs = np.array([0, 1, 0, 1] * 50, dtype=np.bool_)
    bits = (mine, theirs)
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):

        def program(source: DealerFreeTripleSource, party: int, dtype: Any = dtype) -> np.ndarray:
            return source._ole.bit_products(bits[party], dtype)

        first, second = run_both(program)
        assert first.dtype == second.dtype == dtype
        np.testing.assert_array_equal(first + second, (mine & theirs).astype(dtype))
        assert len(set(first.tolist())) > 100  # masked by pads, not the bare products


def test_large_requests_split_into_round_trips_and_still_truncate(monkeypatch: pytest.MonkeyPatch) -> None:
    from blindgate.pets.mpc.dealer_free import ole

    monkeypatch.setattr(ole, "AND_WORDS_PER_ROUND", 2)  # 128 bits a round trip
    first, second = adversarial_shares(raw_values()[:80])  # 320 elements: 3 round trips

    def program(source: DealerFreeTripleSource, party: int) -> tuple[np.ndarray, int]:
        before = source.rounds
        result = source.exact_truncation((first, second)[party], 16)
        return result, source.rounds - before

    (mine, rounds), (theirs, _) = run_both(program)
    raw = (first + second).view(np.int64)
    got = (mine + theirs).view(np.int64)
    assert rounds == 3
    assert np.all((got == raw >> 16) | (got == (raw >> 16) + 1))


def test_one_round_trip_and_its_bytes_through_the_engine() -> None:
    raw = RNG.integers(-(2**61), 2**61, 1000, dtype=np.int64)

    def program(party: Party) -> tuple[np.ndarray, int, int]:
        mask = party.shared_prg.uint64(raw.shape)
        share = raw.view(np.uint64) - mask if party.party == 0 else mask
        party.triples.setup()  # type: ignore[attr-defined]  # the one-off base OTs, not counted here
        truncated = SharedTensor(share, party).truncate(32)
        cost = party.costs["truncate"]
        return truncated.share, cost.rounds, cost.bytes_sent

    (first, rounds, sent0), (second, _, sent1) = run_pair(program, triples="dealer-free")
    got = (first + second).view(np.int64)
    assert np.all((got == raw >> 32) | (got == (raw >> 32) + 1))
    assert rounds == 1
    # party 1: 16 bytes of OT-extension matrix per element (1000 padded to 1024 OTs);
    # party 0: a 4-byte correction per element (32 bits); plus a frame header each.
    assert 1024 * 16 <= sent1 < 1024 * 16 + 64
    assert 1000 * 4 <= sent0 < 1000 * 4 + 64


def test_products_in_training_range_come_out_right_dealer_free() -> None:
    x = RNG.uniform(-100, 100, 500)
    y = RNG.uniform(-100, 100, 500)

    def program(party: Party) -> np.ndarray | None:
        left = SharedTensor.from_owner(party, 0, x if party.party == 0 else None, x.shape)
        right = SharedTensor.from_owner(party, 1, y if party.party == 1 else None, y.shape)
        return (left * right).reveal()

    first, _ = run_pair(program, triples="dealer-free")
    assert first is not None
    np.testing.assert_allclose(first, x * y, atol=0.02)  # input rounding (100 * 2^-17 each), one ulp


@pytest.mark.parametrize("bits", [0, 63])
def test_refuses_bits_outside_one_to_sixty_two(bits: int) -> None:
    source = DealerFreeTripleSource(memory_pair()[0], 0, StandIn())
    with pytest.raises(ValueError, match="1 to 62 bits"):
        source.exact_truncation(np.zeros(4, dtype=np.uint64), bits)


def test_refuses_shares_that_are_not_uint64() -> None:
    source = DealerFreeTripleSource(memory_pair()[0], 0, StandIn())
    with pytest.raises(ValueError, match="uint64"):
        source.exact_truncation(np.zeros(4, dtype=np.int64), 16)


def test_a_mismatched_request_stops_with_a_malformed_frame() -> None:
    def program(source: DealerFreeTripleSource, party: int) -> np.ndarray:
        return source._ole.bit_products(np.zeros(10 if party == 0 else 300, dtype=np.bool_), np.uint32)

    with pytest.raises(MalformedFrame, match="wrong size"):
        run_both(program, timeout=5)
