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

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

import numpy as np

from blindgate.crypto import group
from blindgate.net import Channel, ChannelTimeout, MalformedFrame
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
    """R's side: (own PRF values in key order, S's values in S's order, values per S item)."""
    scalar = group.random_scalar()
    failures: list[BaseException] = []

    def send_blinded() -> None:
        try:
            for blinded in ordered_map(executor, blind_batch, _chunks(keys, BATCH), scalar):
                channel.send(blinded)
        except BaseException as exc:  # re-raised by the caller's thread below
            failures.append(exc)

    sender = threading.Thread(target=send_blinded, name="psi-ecdh-send", daemon=True)
    sender.start()
    own = bytearray()
    for frame in _recv_elements(channel, _frame_sizes(len(keys))):
        own += frame
        tick(len(frame) // group.ELEMENT_BYTES)
    sender.join(channel.timeout)
    if failures:
        raise failures[0]
    if sender.is_alive():
        raise ChannelTimeout("sending our blinded items did not finish in time")
    peer = bytearray()
    frames = _recv_elements(channel, _frame_sizes(peer_size))
    for result in _checked(ordered_map(executor, exponentiate_batch, frames, scalar)):
        peer += result
        tick(len(result) // group.ELEMENT_BYTES)
    return np.frombuffer(bytes(own), ELEMENT), np.frombuffer(bytes(peer), ELEMENT), 1


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
    replies = _checked(ordered_map(executor, exponentiate_batch, frames, scalar))
    if unlink_receiver:
        everything = np.frombuffer(b"".join(replies), ELEMENT)[shuffle(peer_size)]
        replies = (everything[i : i + BATCH].tobytes() for i in range(0, peer_size, BATCH))
    for reply in replies:
        channel.send(reply)
        tick(len(reply) // group.ELEMENT_BYTES)
    for blinded in ordered_map(executor, blind_batch, _chunks(keys, BATCH), scalar):
        channel.send(blinded)
        tick(len(blinded) // group.ELEMENT_BYTES)


__all__ = ["BATCH", "DST", "blind_batch", "exponentiate_batch", "receive", "send"]
