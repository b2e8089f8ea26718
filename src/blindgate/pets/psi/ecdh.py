"""ECDH-PSI (the Diffie–Hellman OPRF construction) over ristretto255.

The receiver R (items y) and sender S (items x) each draw a fresh secret scalar, b and
a. R sends H(y)^b; S returns H(y)^(ab) and sends H(x)^a; R raises those to b and
compares H(y)^(ab) with H(x)^(ab). H is RFC 9380 ``hash_to_ristretto255`` with this
protocol's DST, every element from the peer is checked (canonical, on the group, not
the identity) and all group arithmetic is libsodium's (``blindgate.crypto.group``).
Four scalar multiplications and two hashes per item pair in all: the "ECDH floor".
It needs one round trip and little bandwidth (32 bytes per item each way), which
suits unbalanced sets and slow links.

Threat model: semi-honest parties; security rests on the (one-more) gap Diffie–Hellman
assumption in ristretto255 with H a random oracle. What leaks: both learn the other's
set size. R learns which of its items are in the intersection (the session then
decides what else to reveal). With ``unlink_receiver`` (cardinality mode) S shuffles
H(y)^(ab) before returning them, so R can count matches but not tell which of its
items matched. S learns nothing about R's items: it sees only H(y)^b.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

import numpy as np

from blindgate.crypto import group
from blindgate.net import Channel, MalformedFrame
from blindgate.pets.psi.pool import ordered_map

DST = b"blindgate-psi-ecdh-v1-" + group.SUITE_ID
BATCH = 4096  # items per frame and per pool task
ELEMENT = f"S{group.ELEMENT_BYTES}"

Tick = Callable[[int], None]


def blind_batch(keys: Sequence[bytes], scalar: bytes) -> bytes:
    """H(k)^scalar for each key, concatenated (runs in a worker process)."""
    return b"".join(group.scalar_mult(scalar, group.hash_to_group(k, DST)) for k in keys)


def exponentiate_batch(frame: bytes, scalar: bytes) -> bytes:
    """Each peer element, checked, raised to ``scalar`` (runs in a worker process)."""
    size = group.ELEMENT_BYTES
    return b"".join(
        group.scalar_mult(scalar, group.decode_element(frame[i : i + size]))
        for i in range(0, len(frame), size)
    )


def _chunks(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    return (items[i : i + size] for i in range(0, len(items), size))


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


def receive(
    channel: Channel,
    keys: Sequence[bytes],
    peer_size: int,
    executor: Executor,
    tick: Tick,
) -> tuple[np.ndarray, np.ndarray, int]:
    """R's side: (own PRF values in key order, S's values in S's order, values per S item).

    One thread drives the channel (a TLS socket must not be read and written from two
    threads): R sends all its blinded items, then reads. S works on each frame as it
    arrives and answers once it has them all, so neither side waits on the other's reads.
    """
    scalar = group.random_scalar()
    for blinded in ordered_map(executor, blind_batch, _chunks(keys, BATCH), scalar):
        channel.send(blinded)
        tick(len(blinded) // group.ELEMENT_BYTES)
    own = b"".join(_recv_elements(channel, _frame_sizes(len(keys))))
    peer = bytearray()
    frames = _recv_elements(channel, _frame_sizes(peer_size))
    for result in _checked(ordered_map(executor, exponentiate_batch, frames, scalar)):
        peer += result
        tick(len(result) // group.ELEMENT_BYTES)
    return np.frombuffer(own, ELEMENT), np.frombuffer(bytes(peer), ELEMENT), 1


def send(
    channel: Channel,
    keys: Sequence[bytes],
    peer_size: int,
    executor: Executor,
    tick: Tick,
    unlink_receiver: bool,
    shuffle: Callable[[int], np.ndarray],
) -> None:
    """S's side. ``keys`` are in the order S wants R to see them (the session shuffles them)."""
    scalar = group.random_scalar()
    frames = _recv_elements(channel, _frame_sizes(peer_size))
    everything = np.frombuffer(
        b"".join(_checked(ordered_map(executor, exponentiate_batch, frames, scalar))), ELEMENT
    )
    if unlink_receiver:
        everything = everything[shuffle(peer_size)]
    for start in range(0, peer_size, BATCH):
        channel.send(everything[start : start + BATCH].tobytes())
        tick(min(BATCH, peer_size - start))
    for blinded in ordered_map(executor, blind_batch, _chunks(keys, BATCH), scalar):
        channel.send(blinded)
        tick(len(blinded) // group.ELEMENT_BYTES)


__all__ = ["BATCH", "DST", "blind_batch", "exponentiate_batch", "receive", "send"]
