"""ECDH-PSI (the Diffie–Hellman OPRF construction) over ristretto255.

The receiver R (items y) and sender S (items x) each draw a fresh secret scalar, b and
a. R sends H(y)^b; S returns H(y)^(ab) and sends H(x)^a; R raises those to b and
compares H(y)^(ab) with H(x)^(ab). H is RFC 9380 ``hash_to_ristretto255`` with this
protocol's DST, applied to the key's 32-byte BLAKE2b digest (``buckets.key_digest``, a
collision-resistant hash, so H stays a random oracle on keys); every element from the
peer is checked (canonical, on the group, not the identity) and all group arithmetic is
libsodium's (``blindgate.crypto.group``). A run may be split into buckets (``buckets``):
a and b are drawn once per run and serve every bucket, as they would one big set.
Four scalar multiplications and two hashes per item pair in all: the "ECDH floor".
It needs one round trip and little bandwidth (32 bytes per item each way), which
suits unbalanced sets and slow links.

Threat model: semi-honest parties; security rests on the (one-more) gap Diffie–Hellman
assumption in ristretto255 with H a random oracle. What leaks: both learn the other's
set size. R learns which of its items are in the intersection (the session then
decides what else to reveal). In cardinality mode (``cardinality``) S returns H(y)^(ab)
and sends H(x)^a each in a uniformly random order over the whole run, so R can count
matches but not tell which of its items matched. S learns nothing about R's items: it
sees only H(y)^b.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor

import numpy as np

from blindgate.crypto import group
from blindgate.net import Channel, MalformedFrame
from blindgate.pets.psi.pool import ordered_map
from blindgate.pets.psi.work import DST, blind_batch, exponentiate_batch

BATCH = 2048  # items per frame and per pool task: small enough that pool tails stay short
ELEMENT = f"S{group.ELEMENT_BYTES}"

Tick = Callable[[int], None]


def _chunks(digests: np.ndarray) -> Iterator[bytes]:
    return (digests[i : i + BATCH].tobytes() for i in range(0, digests.size, BATCH))


def _frame_sizes(count: int) -> list[int]:
    return [min(BATCH, count - start) for start in range(0, count, BATCH)]


def _recv_elements(channel: Channel, sizes: Sequence[int]) -> Iterator[bytes]:
    for size in sizes:
        frame = channel.recv()
        if len(frame) != size * group.ELEMENT_BYTES:
            raise MalformedFrame(f"expected {size} group elements in a frame")
        yield frame


def _checked(results: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from results
    except group.InvalidElement as exc:
        raise MalformedFrame("the peer sent an invalid group element") from exc


def send_blinded(
    channel: Channel, digests: np.ndarray, executor: Executor, tick: Tick, scalar: bytes
) -> None:
    """H(d)^scalar for each digest, sent in frames of ``BATCH`` elements, in order."""
    for blinded in ordered_map(executor, blind_batch, _chunks(digests), scalar):
        channel.send(blinded)
        tick(len(blinded) // group.ELEMENT_BYTES)


def blinded(digests: np.ndarray, executor: Executor, scalar: bytes) -> Iterator[bytes]:
    """H(d)^scalar for each digest, a frame's worth at a time, in order (not sent)."""
    return ordered_map(executor, blind_batch, _chunks(digests), scalar)


def received(channel: Channel, count: int) -> Iterator[bytes]:
    """``count`` elements from the peer, frame by frame (sizes checked, values not: they are
    only compared)."""
    return _recv_elements(channel, _frame_sizes(count))


def exponentiated(channel: Channel, count: int, executor: Executor, scalar: bytes) -> Iterator[bytes]:
    """``count`` elements from the peer, each checked and raised to ``scalar``, frame by frame."""
    frames = _recv_elements(channel, _frame_sizes(count))
    return _checked(ordered_map(executor, exponentiate_batch, frames, scalar))


def send_stream(channel: Channel, pieces: Iterable[np.ndarray], tick: Tick) -> None:
    """Send the elements of ``pieces`` (arrays of any sizes) in frames of ``BATCH`` elements.

    The frames' sizes depend on the total alone, not on the pieces' boundaries.
    """
    pending = bytearray()
    frame = BATCH * group.ELEMENT_BYTES
    for piece in pieces:
        pending += piece.tobytes()
        while len(pending) >= frame:
            channel.send(bytes(pending[:frame]))
            del pending[:frame]
            tick(BATCH)
    if pending:
        channel.send(bytes(pending))
        tick(len(pending) // group.ELEMENT_BYTES)


def receive(
    channel: Channel,
    digests: np.ndarray,
    peer_size: int,
    executor: Executor,
    tick: Tick,
    scalar: bytes,
) -> tuple[np.ndarray, np.ndarray, int]:
    """R's side for one bucket: (own PRF values in order, S's values in S's order, values per S item).

    One thread drives the channel (a TLS socket must not be read and written from two
    threads): R sends all its blinded items, then reads. S works on each frame as it
    arrives and answers once it has them all, so neither side waits on the other's reads.
    ``scalar`` is R's secret b, one per run.
    """
    send_blinded(channel, digests, executor, tick, scalar)
    own = b"".join(received(channel, digests.size))
    peer = bytearray()
    for result in exponentiated(channel, peer_size, executor, scalar):
        peer += result
        tick(len(result) // group.ELEMENT_BYTES)
    return np.frombuffer(own, ELEMENT), np.frombuffer(bytes(peer), ELEMENT), 1


def send(
    channel: Channel,
    digests: np.ndarray,
    peer_size: int,
    executor: Executor,
    tick: Tick,
    scalar: bytes,
) -> None:
    """S's side for one bucket. ``digests`` are in the order S wants R to see them; ``scalar`` is a.

    (Cardinality mode does not come here: it returns R's values shuffled over the whole
    run, see ``cardinality``.)
    """
    everything = b"".join(exponentiated(channel, peer_size, executor, scalar))
    for start in range(0, len(everything), BATCH * group.ELEMENT_BYTES):
        channel.send(everything[start : start + BATCH * group.ELEMENT_BYTES])
        tick(min(BATCH, peer_size - start // group.ELEMENT_BYTES))
    send_blinded(channel, digests, executor, tick, scalar)


__all__ = [
    "BATCH",
    "DST",
    "ELEMENT",
    "blind_batch",
    "blinded",
    "exponentiate_batch",
    "exponentiated",
    "receive",
    "received",
    "send",
    "send_blinded",
    "send_stream",
]
