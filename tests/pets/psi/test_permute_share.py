"""Permute-and-share between two threads over an in-memory channel.

Correctness (a ^ b == x[perm]), shares that are fresh and not the answer, and a peer that
sends frames of the wrong size or holds another n: refused with MalformedFrame, no hang.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from blindgate.net import Channel, ChannelError, Identity, Listener, MalformedFrame, connect, memory_pair
from blindgate.pets.psi import benes
from blindgate.pets.psi.permute_share import padded_size, permute_as_chooser, permute_as_holder, route_padded

from .conftest import both_ends

_RNG = np.random.default_rng()


def _words(n: int) -> np.ndarray:
    return _RNG.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)


def _run(
    x: np.ndarray,
    perm: np.ndarray,
    wrap: Callable[[Channel], Channel] = lambda channel: channel,
    network: benes.Network | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(chooser's a, holder's b); the holder in a thread, its channel passed through ``wrap``."""
    return both_ends(
        lambda channel: permute_as_chooser(channel, perm, network),
        lambda channel: permute_as_holder(wrap(channel), x),
        timeout=3,
    )


@pytest.mark.parametrize("n", [1, 2, 3, 5, 100, 1000, 4096])
def test_shares_xor_to_the_permuted_values(n: int) -> None:
    x, perm = _words(n), _RNG.permutation(n)
    a, b = _run(x, perm)
    assert a.dtype == b.dtype == np.uint64 and a.shape == b.shape == (n,)
    np.testing.assert_array_equal(a ^ b, x[perm])


def test_over_tls_with_frames_larger_than_socket_buffers() -> None:
    """Each layer's matrix and the previous layer's corrections cross at once (512 KiB each
    here): the TLS channel's full-duplex ``exchange`` must carry them without deadlock."""
    n = 1 << 16
    x, perm = _words(n), _RNG.permutation(n)
    holder_id, chooser_id = Identity.generate("holder"), Identity.generate("chooser")
    outcome: dict[str, Any] = {}
    with Listener("127.0.0.1:0", holder_id, chooser_id.cert_pem, timeout=10) as listener:

        def holder() -> None:
            try:
                with listener.accept() as channel:
                    outcome["b"] = permute_as_holder(channel, x)
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=holder, daemon=True)
        thread.start()
        with connect(f"127.0.0.1:{listener.port}", chooser_id, holder_id.cert_pem, timeout=10) as channel:
            a = permute_as_chooser(channel, perm)
        thread.join(20)
    assert not thread.is_alive() and "error" not in outcome
    np.testing.assert_array_equal(a ^ outcome["b"], x[perm])


def test_each_share_alone_is_not_the_answer_and_is_fresh() -> None:
    x, perm = _words(300), _RNG.permutation(300)
    first = _run(x, perm)
    second = _run(x, perm)
    for a, b in (first, second):
        np.testing.assert_array_equal(a ^ b, x[perm])
        assert not np.any(a == x[perm]) and not np.any(b == x[perm])  # each: a 2^-64 chance
    assert not np.any(first[0] == second[0]) and not np.any(first[1] == second[1])


def test_equal_values_do_not_give_equal_shares() -> None:
    """Cardinality mode feeds many zeros: the chooser's share must not show where they went."""
    a, b = _run(np.zeros(64, dtype=np.uint64), _RNG.permutation(64))
    assert not np.any(a ^ b) and len(set(a.tolist())) == 64


def test_the_chooser_sees_the_values_only_masked() -> None:
    x, seen = _words(50), list[bytes]()

    def record(frame: bytes) -> bytes:
        seen.append(frame)
        return frame

    perm = _RNG.permutation(50)
    a, b = _run(x, perm, lambda channel: _Tampering(channel, 0, record))
    np.testing.assert_array_equal(a ^ b, x[perm])
    masked = np.frombuffer(seen[0], dtype="<u8")
    assert masked.shape == x.shape and not np.any(masked == x)


@pytest.mark.parametrize("n", [1, 6, 300])
def test_a_network_routed_ahead(n: int) -> None:
    x, perm = _words(n), _RNG.permutation(n)
    network = route_padded(perm)
    assert network.size == padded_size(n)
    np.testing.assert_array_equal(benes.apply(network, np.arange(network.size))[:n], perm)
    a, b = _run(x, perm, network=network)
    np.testing.assert_array_equal(a ^ b, x[perm])


def test_a_network_of_the_wrong_size_is_refused_before_sending() -> None:
    channel, _ = memory_pair(timeout=1)
    with pytest.raises(ValueError):
        permute_as_chooser(channel, _RNG.permutation(5), route_padded(_RNG.permutation(4)))
    assert channel.stats.frames_sent == 0


def test_padding_sizes() -> None:
    assert [padded_size(n) for n in (1, 2, 3, 4, 5, 1000, 1024, 1025)] == [2, 2, 4, 4, 8, 1024, 1024, 2048]


class _Tampering(Channel):
    """Passes frames through, except that the ``index``-th one sent is altered by ``change``."""

    def __init__(self, inner: Channel, index: int, change: Callable[[bytes], bytes]) -> None:
        super().__init__(inner.timeout, inner.max_frame)
        self._inner, self._index, self._change, self._sent = inner, index, change, 0

    def _send_frame(self, payload: bytes | memoryview) -> None:
        frame = bytes(payload)
        if self._sent == self._index:
            frame = self._change(frame)
        self._sent += 1
        self._inner.send(frame)

    def _recv_frame(self) -> bytes:
        return self._inner.recv()

    def close(self) -> None:
        self._inner.close()


def _truncate(frame: bytes) -> bytes:
    return frame[:-1]


def _extend(frame: bytes) -> bytes:
    return frame + bytes(16)


# Frames the holder sends: 0 its masked inputs, 1 its base-OT elements, 2.. its corrections.
@pytest.mark.parametrize("index", [0, 2, 4])
@pytest.mark.parametrize("change", [_truncate, _extend])
def test_chooser_refuses_a_holder_frame_of_the_wrong_size(
    index: int, change: Callable[[bytes], bytes]
) -> None:
    x, perm = _words(5), _RNG.permutation(5)
    with pytest.raises(MalformedFrame):
        _run(x, perm, lambda channel: _Tampering(channel, index, change))


# Frames the chooser sends: 0 its base-OT element, 1.. its OT-extension matrices.
@pytest.mark.parametrize("index", [1, 3])
@pytest.mark.parametrize("change", [_truncate, _extend])
def test_holder_refuses_a_chooser_frame_of_the_wrong_size(
    index: int, change: Callable[[bytes], bytes]
) -> None:
    holder_end, chooser_end = memory_pair(timeout=3)

    def chooser() -> None:
        try:
            permute_as_chooser(_Tampering(chooser_end, index, change), _RNG.permutation(100))
        except ChannelError:
            pass  # the holder gave up first
        finally:
            chooser_end.close()

    thread = threading.Thread(target=chooser, daemon=True)
    thread.start()
    try:
        with pytest.raises(MalformedFrame):
            permute_as_holder(holder_end, _words(100))
    finally:
        holder_end.close()
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize(("held", "chosen"), [(5, 6), (5, 4), (5, 7), (3, 100)])
def test_mismatched_sizes_are_refused(held: int, chosen: int) -> None:
    with pytest.raises(MalformedFrame):
        _run(_words(held), _RNG.permutation(chosen))


@pytest.mark.parametrize(
    "perm",
    [np.array([0, 0, 1]), np.array([1, 2, 3]), np.array([], dtype=np.int64), np.array([0.0, 1.0])],
)
def test_chooser_checks_its_permutation_before_sending(perm: np.ndarray) -> None:
    channel, _ = memory_pair(timeout=1)
    with pytest.raises(ValueError):
        permute_as_chooser(channel, perm)
    assert channel.stats.frames_sent == 0


@pytest.mark.parametrize(
    "x",
    [
        np.arange(4, dtype=np.int64),
        np.zeros((2, 2), dtype=np.uint64),
        np.zeros(0, dtype=np.uint64),
        [1, 2, 3],
    ],
)
def test_holder_checks_its_values_before_sending(x: Any) -> None:
    channel, _ = memory_pair(timeout=1)
    with pytest.raises(ValueError):
        permute_as_holder(channel, x)
    assert channel.stats.frames_sent == 0
