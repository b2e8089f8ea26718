"""Dealer-free triples: reconstructed c equals a*b, a@b, a&b; clear_matmul equals M @ v; faults stop."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest

from blindgate.net import (
    Channel,
    ChannelError,
    ChannelTimeout,
    Identity,
    Listener,
    MalformedFrame,
    PeerClosed,
    connect,
    memory_pair,
)
from blindgate.pets.mpc.correlations import ClearMatmulSource, Triple, TripleSource
from blindgate.pets.mpc.dealer_free import DealerFreeTripleSource
from tests.pets.mpc.dealer_free.stand_in import StandIn

T = TypeVar("T")


def run_both(program: Callable[[DealerFreeTripleSource], T], timeout: float = 20) -> tuple[T, T]:
    """Run ``program`` for party 0 here and party 1 on a thread, over an in-memory pair."""
    channels = memory_pair(timeout)
    sources = [DealerFreeTripleSource(channels[p], p, StandIn()) for p in (0, 1)]
    results: list[Any] = [None, None]
    failures: list[BaseException] = []

    def party_one() -> None:
        try:
            results[1] = program(sources[1])
        except BaseException as exc:
            failures.append(exc)
            channels[1].close()

    thread = threading.Thread(target=party_one)
    thread.start()
    try:
        results[0] = program(sources[0])
    finally:
        channels[0].close()
        thread.join(timeout)
    assert not failures, failures
    return results[0], results[1]


def opened(pair: tuple[Triple, Triple]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    first, second = pair
    return first.a + second.a, first.b + second.b, first.c + second.c


def test_it_satisfies_the_triple_source_contract() -> None:
    source: TripleSource = DealerFreeTripleSource(memory_pair()[0], 0, StandIn())
    with_clear: ClearMatmulSource = DealerFreeTripleSource(memory_pair()[0], 1, StandIn())
    assert source.party == 0 and with_clear.party == 1


@pytest.mark.parametrize("shape", [(1,), (5,), (3, 7), (2, 3, 4), (0,)])
def test_elementwise_triples_reconstruct(shape: tuple[int, ...]) -> None:
    pair = run_both(lambda source: source.elementwise(shape))
    a, b, c = opened(pair)
    assert a.shape == b.shape == c.shape == shape and a.dtype == np.uint64
    np.testing.assert_array_equal(c, a * b)
    if a.size:
        assert not np.array_equal(pair[0].a, a)  # a share is not the value


@pytest.mark.parametrize(
    ("left", "right"), [((1, 1), (1, 1)), ((7, 4), (4, 3)), ((33, 5), (5, 1)), ((2, 40), (40, 6))]
)
def test_matmul_triples_reconstruct(left: tuple[int, int], right: tuple[int, int]) -> None:
    a, b, c = opened(run_both(lambda source: source.matmul(left, right)))
    assert a.shape == left and b.shape == right and c.shape == (left[0], right[1])
    np.testing.assert_array_equal(c, a @ b)


def test_bitwise_triples_reconstruct() -> None:
    first, second = run_both(lambda source: source.bitwise((4, 9)))
    a, b, c = first.a ^ second.a, first.b ^ second.b, first.c ^ second.c
    assert c.shape == (4, 9) and c.dtype == np.uint64
    np.testing.assert_array_equal(c, a & b)
    assert np.count_nonzero(a & b) > 0


def test_many_requests_in_sequence_stay_in_step() -> None:
    def program(source: DealerFreeTripleSource) -> list[Triple]:
        return [source.elementwise((10,)), source.matmul((3, 2), (2, 2)), source.elementwise((1,))]

    firsts, seconds = run_both(program)
    for first, second in zip(firsts, seconds, strict=True):
        a, b, c = opened((first, second))
        np.testing.assert_array_equal(c, a @ b if a.ndim == 2 else a * b)


@pytest.mark.parametrize("holder", [0, 1])
@pytest.mark.parametrize("columns", [None, 3])
def test_clear_matmul_equals_the_plain_product(holder: int, columns: int | None) -> None:
    rng = np.random.default_rng(holder)
    matrix = rng.integers(0, 2**64, (50, 6), dtype=np.uint64)
    shape = (6,) if columns is None else (6, columns)
    vector = rng.integers(0, 2**64, shape, dtype=np.uint64)
    share0 = rng.integers(0, 2**64, shape, dtype=np.uint64)
    shares = (share0, vector - share0)
    first, second = run_both(
        lambda s: s.clear_matmul(holder, matrix if s.party == holder else None, (50, 6), shares[s.party])
    )
    np.testing.assert_array_equal(first + second, matrix @ vector)


def test_clear_matmul_refuses_bad_arguments() -> None:
    source = DealerFreeTripleSource(memory_pair()[0], 0, StandIn())
    share = np.zeros(3, dtype=np.uint64)
    with pytest.raises(ValueError, match="holder must pass"):
        source.clear_matmul(0, None, (2, 3), share)
    with pytest.raises(ValueError, match="only the holder"):
        source.clear_matmul(1, np.zeros((2, 3), dtype=np.uint64), (2, 3), share)
    with pytest.raises(ValueError, match="uint64 with 3 rows"):
        source.clear_matmul(1, None, (2, 3), np.zeros(4, dtype=np.uint64))


def test_a_dropped_peer_raises_instead_of_hanging() -> None:
    left, right = memory_pair(timeout=5)
    source = DealerFreeTripleSource(left, 0, StandIn())
    right.close()
    with pytest.raises(PeerClosed):
        source.elementwise((4,))


def test_a_silent_peer_times_out() -> None:
    left, _right = memory_pair(timeout=0.3)
    with pytest.raises(ChannelTimeout):
        DealerFreeTripleSource(left, 0, StandIn()).matmul((2, 2), (2, 2))


def test_a_peer_asking_for_another_shape_is_a_malformed_frame() -> None:
    def program(source: DealerFreeTripleSource) -> Triple:
        return source.elementwise((8,) if source.party == 0 else (9,))

    with pytest.raises((MalformedFrame, AssertionError)) as caught:
        run_both(program, timeout=5)
    assert "wrong size" in str(caught.value) or "MalformedFrame" in repr(caught.value)


# Two processes over pinned TLS ---------------------------------------------------------------


def _party_one(address: str, mine: Identity, peer_cert: bytes) -> None:
    channel = connect(address, mine, peer_cert, timeout=30)
    source = DealerFreeTripleSource(channel, 1, StandIn())
    for triple in (source.elementwise((16,)), source.matmul((8, 3), (3, 2)), source.bitwise((5,))):
        for part in (triple.a, triple.b, triple.c):
            channel.send_array(part)  # test only: hand the shares back to check them
    channel.close()


def test_two_processes_over_tls() -> None:
    ours, theirs = Identity.generate("party-0"), Identity.generate("party-1")
    with Listener("127.0.0.1:0", ours, theirs.cert_pem, timeout=30) as listener:
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=_party_one, args=(f"127.0.0.1:{listener.port}", theirs, ours.cert_pem))
        child.start()
        try:
            channel: Channel = listener.accept(30)
            source = DealerFreeTripleSource(channel, 0, StandIn())
            mine = [source.elementwise((16,)), source.matmul((8, 3), (3, 2)), source.bitwise((5,))]
            theirs_ = [Triple(*(channel.recv_array(np.uint64) for _ in range(3))) for _ in mine]
        finally:
            child.join(30)
        assert child.exitcode == 0
    (ea, eb, ec), (ma, mb, mc) = opened((mine[0], theirs_[0])), opened((mine[1], theirs_[1]))
    np.testing.assert_array_equal(ec, ea * eb)
    np.testing.assert_array_equal(mc, ma @ mb)
    ba, bb, bc = (getattr(mine[2], k) ^ getattr(theirs_[2], k) for k in "abc")
    np.testing.assert_array_equal(bc, ba & bb)
    with pytest.raises(ChannelError):
        channel.recv()  # the child has gone: an error, not a hang


def test_with_the_real_base_ots() -> None:
    channels = memory_pair(20)
    sources = [DealerFreeTripleSource(channels[p], p) for p in (0, 1)]  # blindgate.pets.ot.base
    results: list[Triple] = []
    thread = threading.Thread(target=lambda: results.append(sources[1].elementwise((33,))))
    thread.start()
    mine = sources[0].elementwise((33,))
    thread.join(20)
    a, b, c = opened((mine, results[0]))
    np.testing.assert_array_equal(c, a * b)


def test_large_requests_split_into_rounds_and_still_reconstruct(monkeypatch: pytest.MonkeyPatch) -> None:
    from blindgate.pets.mpc.dealer_free import ole

    monkeypatch.setattr(ole, "MAX_ROUND_BYTES", 344 * 8 * 3)  # three 8-wide products per round
    monkeypatch.setattr(ole, "AND_WORDS_PER_ROUND", 4)

    def program(source: DealerFreeTripleSource) -> tuple[Triple, Triple, Triple, int]:
        before = source.rounds
        results = (source.matmul((8, 5), (5, 2)), source.elementwise((50,)), source.bitwise((10,)))
        return (*results, source.rounds - before)

    first, second = run_both(program)
    a, b, c = opened((first[0], second[0]))
    np.testing.assert_array_equal(c, a @ b)
    a, b, c = opened((first[1], second[1]))
    np.testing.assert_array_equal(c, a * b)
    bits = [getattr(first[2], k) ^ getattr(second[2], k) for k in "abc"]
    np.testing.assert_array_equal(bits[2], bits[0] & bits[1])
    # matmul: 10 products per side in rounds of 3 -> 4 x 2 rounds; elementwise 50 wide-1 rows fit
    # 24 per round -> 3 x 2; bitwise 10 words in fours -> 3 x 1.
    assert first[3] == second[3] == 8 + 6 + 3


@pytest.mark.parametrize("columns", [None, 2])
def test_clear_matmul_pair_equals_both_plain_products(columns: int | None) -> None:
    rng = np.random.default_rng(5)
    matrices = (
        rng.integers(0, 2**64, (30, 4), dtype=np.uint64),
        rng.integers(0, 2**64, (30, 3), dtype=np.uint64),
    )
    operands = [
        rng.integers(0, 2**64, (m.shape[1],) if columns is None else (m.shape[1], columns), dtype=np.uint64)
        for m in matrices
    ]
    masks = [rng.integers(0, 2**64, v.shape, dtype=np.uint64) for v in operands]
    shares = ((masks[0], masks[1]), (operands[0] - masks[0], operands[1] - masks[1]))
    shapes = (matrices[0].shape, matrices[1].shape)
    first, second = run_both(lambda s: s.clear_matmul_pair(matrices[s.party], shapes, shares[s.party]))
    for h in (0, 1):
        np.testing.assert_array_equal(first[h] + second[h], matrices[h] @ operands[h])


@pytest.mark.parametrize(("shape", "fanout"), [((5,), 1), ((3, 4), 7)])
def test_fanout_triples_reconstruct(shape: tuple[int, ...], fanout: int) -> None:
    first, second = run_both(lambda source: source.elementwise_fanout(shape, fanout))
    a, b, c = opened((first, second))
    assert a.shape == shape and b.shape == c.shape == (fanout, *shape)
    np.testing.assert_array_equal(c, a[None] * b)


@pytest.mark.parametrize(("shape", "fanout"), [((3,), 1), ((2, 5), 2), ((4,), 9)])
def test_bitwise_fanout_triples_reconstruct(shape: tuple[int, ...], fanout: int) -> None:
    first, second = run_both(lambda source: source.bitwise_fanout(shape, fanout))
    a, b, c = (getattr(first, k) ^ getattr(second, k) for k in "abc")
    assert a.shape == shape and b.shape == c.shape == (fanout, *shape) and c.dtype == np.uint64
    np.testing.assert_array_equal(c, a[None] & b)
    assert np.count_nonzero(c) > 0
