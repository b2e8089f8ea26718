"""Base oblivious transfer over ristretto255: Chou–Orlandi "simplest OT", batched.

The sender gets ``count`` pairs of random 32-byte keys (k0, k1); the receiver, with a
choice bit c per OT, gets k_c and nothing about k_(1-c). Two frames in all: the sender's
element A = a·G, then the receiver's elements B_i (b_i·G, or A + b_i·G when c_i = 1).
The keys are SHA-256 of (index, A, B_i, the shared point), so every OT in a batch is
bound to its position and to this run's A.

Group operations are libsodium's (``blindgate.crypto.group``); only the protocol glue is
written here, because no maintained Python library offers OT.

Threat model and what leaks: semi-honest parties (both follow the protocol). The sender
sees B_i, which is uniformly distributed whatever c_i is, so it learns nothing about the
choices; the receiver would have to solve CDH to learn a·(B_i − A) for the key it did
not choose. Caveats (stated because they matter for a malicious-security upgrade): the
simplest OT is not UC-secure against a malicious receiver without extra checks
(Genç, Iovino, Rial 2017; Hauck, Loss 2017), and the sender's scalar a is shared
across the batch. Use fresh calls per protocol run; keys never touch disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from blindgate.crypto import group
from blindgate.net import Channel, MalformedFrame

KEY_BYTES = 32
MAX_BASE_OTS = 1 << 16  # bounds the receiver's frame; extension needs a few hundred at most


def _key(index: int, a_point: bytes, b_point: bytes, shared: bytes) -> bytes:
    return hashlib.sha256(
        b"blindgate-base-ot-v1" + index.to_bytes(4, "big") + a_point + b_point + shared
    ).digest()


def _check_count(count: int) -> None:
    if not 0 < count <= MAX_BASE_OTS:
        raise ValueError(f"base OT count must be in 1..{MAX_BASE_OTS}, got {count}")


def send_base_ots(channel: Channel, count: int) -> list[tuple[bytes, bytes]]:
    """Act as OT sender for ``count`` OTs; return the (k0, k1) key pairs."""
    _check_count(count)
    secret = group.random_scalar()
    a_point = group.scalar_mult_base(secret)
    channel.send(a_point)
    frame = channel.recv()
    if len(frame) != count * group.ELEMENT_BYTES:
        raise MalformedFrame(f"base OT: expected {count} elements from the receiver")
    pairs = []
    for i in range(count):
        raw = frame[i * group.ELEMENT_BYTES : (i + 1) * group.ELEMENT_BYTES]
        try:
            b_point = group.decode_element(raw)
            key0 = _key(i, a_point, b_point, group.scalar_mult(secret, b_point))
            key1 = _key(i, a_point, b_point, group.scalar_mult(secret, group.sub(b_point, a_point)))
        except group.InvalidElement as exc:
            raise MalformedFrame("base OT: the receiver sent an invalid group element") from exc
        pairs.append((key0, key1))
    return pairs


def receive_base_ots(channel: Channel, choices: Sequence[int]) -> list[bytes]:
    """Act as OT receiver with one choice bit (0 or 1) per OT; return the chosen keys."""
    _check_count(len(choices))
    if any(c not in (0, 1) for c in choices):
        raise ValueError("base OT choices must be bits (0 or 1)")
    try:
        a_point = group.decode_element(channel.recv())
    except group.InvalidElement as exc:
        raise MalformedFrame("base OT: the sender sent an invalid group element") from exc
    secrets = [group.random_scalar() for _ in choices]
    b_points = []
    for secret, choice in zip(secrets, choices, strict=True):
        b_point = group.scalar_mult_base(secret)
        b_points.append(group.add(a_point, b_point) if choice else b_point)
    channel.send(b"".join(b_points))
    return [
        _key(i, a_point, b_point, group.scalar_mult(secret, a_point))
        for i, (secret, b_point) in enumerate(zip(secrets, b_points, strict=True))
    ]


__all__ = ["KEY_BYTES", "MAX_BASE_OTS", "receive_base_ots", "send_base_ots"]
