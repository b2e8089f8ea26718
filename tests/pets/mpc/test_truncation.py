"""The dealer's truncation pair: exact to one ulp over the whole stated range, where the local
(SecureML) truncation fails."""

from __future__ import annotations

import numpy as np
import pytest

from blindgate.pets.mpc.fixed_point import truncate_share
from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor, truncate_with_pair

LIMIT = 1 << 62  # the pair's stated range: |raw| < 2^62
RNG = np.random.default_rng(11)


def raw_values() -> np.ndarray:
    edges = [-LIMIT, -LIMIT + 1, LIMIT - 1, LIMIT - 2**16, -1, 0, 1, 2**15, -(2**15), 2**16 - 1]
    spread = RNG.integers(-LIMIT, LIMIT, 3000, dtype=np.int64)
    small = RNG.integers(-(2**40), 2**40, 3000, dtype=np.int64)
    return np.concatenate([np.array(edges, dtype=np.int64), spread, small])


def shares_of(party: Party, raw: np.ndarray) -> np.ndarray:
    """Additive shares with a uniform mask from the common PRG."""
    mask = party.shared_prg.uint64(raw.shape)
    return raw.view(np.uint64) - mask if party.party == 0 else mask


def opened_truncation(raw: np.ndarray, bits: int, with_pair: bool, mode: str = "dealer") -> np.ndarray:
    def program(party: Party) -> np.ndarray:
        share = shares_of(party, raw)
        if with_pair:
            return truncate_with_pair(party, share, bits)
        return truncate_share(share, bits, party.party)

    first, second = run_pair(program, triples=mode)
    total: np.ndarray = (first + second).view(np.int64)
    return total


@pytest.mark.parametrize("bits", [3, 16, 32])
def test_the_pair_truncates_to_floor_or_floor_plus_one_across_the_whole_range(bits: int) -> None:
    raw = raw_values()
    got = opened_truncation(raw, bits, with_pair=True)
    floor = raw >> bits  # arithmetic shift: floor division by 2^bits
    assert np.all((got == floor) | (got == floor + 1))
    exact = raw % (1 << bits) == 0
    assert np.array_equal(got[exact], floor[exact])  # no fraction, nothing to round


def test_local_truncation_fails_near_the_range_bound_where_the_pair_does_not() -> None:
    raw = np.full(4000, 1 << 61, dtype=np.int64)  # large raw values: local failure ~1/4 per element
    local = opened_truncation(raw, 16, with_pair=False)
    paired = opened_truncation(raw, 16, with_pair=True)
    assert np.count_nonzero(local != raw >> 16) > 100
    assert np.all(paired == raw >> 16)


def test_the_pair_rounds_without_bias() -> None:
    raw = np.full(20000, (5 << 16) + (1 << 14), dtype=np.int64)  # 5.25 ulp after the shift
    got = opened_truncation(raw, 16, with_pair=True)
    assert set(np.unique(got).tolist()) <= {5, 6}
    assert abs(got.mean() - 5.25) < 0.02  # +1 with probability 1/4: 18 standard deviations apart


@pytest.mark.parametrize("mode", ["dealer", "dealer-free"])
def test_the_engine_truncates_in_one_round_with_either_source(mode: str) -> None:
    raw = RNG.integers(-(2**40), 2**40, 500, dtype=np.int64)

    def program(party: Party) -> tuple[np.ndarray, int]:
        truncated = SharedTensor(shares_of(party, raw), party).truncate(16)
        return truncated.share, party.total().rounds

    (first, rounds), (second, _) = run_pair(program, triples=mode)
    got = (first + second).view(np.int64)
    assert np.all((got == raw >> 16) | (got == (raw >> 16) + 1))
    assert rounds == 1  # dealer: the pair's opening; dealer-free: the known-MSB rule's OTs


@pytest.mark.parametrize(
    "request_",
    [
        {"kind": "trunc", "shape": [3], "bits": 0},
        {"kind": "trunc", "shape": [-1], "bits": 16},
        {"kind": "masked", "products": [[0, 0, 4, 0, 1]]},  # no mask registered
        {"kind": "mask", "holder": 2, "shape": [3, 3]},
        {"kind": "teleport"},
    ],
)
def test_the_dealer_refuses_a_malformed_request(request_: dict[str, object]) -> None:
    import threading

    from blindgate.net import MalformedFrame, memory_pair
    from blindgate.pets.mpc.dealer import DealerTriples, serve

    d0, p0 = memory_pair(5)
    d1, p1 = memory_pair(5)
    errors: list[BaseException] = []

    def dealer() -> None:
        try:
            serve(d0, d1)
        except BaseException as exc:  # the assertion below looks at it
            errors.append(exc)

    threads = [threading.Thread(target=dealer, daemon=True)] + [
        threading.Thread(target=DealerTriples, args=(i, c), daemon=True) for i, c in ((0, p0), (1, p1))
    ]
    for thread in threads:
        thread.start()
    for thread in threads[1:]:
        thread.join(5)
    p1.send_json(request_)
    threads[0].join(5)
    assert not threads[0].is_alive() and isinstance(errors[0], MalformedFrame)
