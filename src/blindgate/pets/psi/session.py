"""One PSI run between two parties: the hello, the protocol, and what each party ends with.

Modes (what each party learns, beyond both learning the other's number of distinct keys):

- ``intersection``: the receiver learns which of its rows are shared; the sender nothing.
- ``both``: both learn which of their own rows are shared.
- ``join`` (aligned join): both learn their shared rows and end with them in the same
  order, a random order the receiver draws, so row k on one side is row k on the other.
- ``cardinality`` (ECDH-PSI only): both learn the intersection's size and nothing else.

The receiver (the party that runs the OPRF and compares) is chosen per run and both
must agree. For ``both`` and ``join`` the sender sends its values in an order it
shuffled secretly, the receiver answers with the positions that matched (in its
random order) and the sender maps them back: the receiver learns nothing about the
sender's row order, and the sender learns exactly the shared rows. Threat model:
semi-honest parties (see ``ecdh`` and ``kkrt`` for each protocol's assumptions).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from blindgate.net import Channel, ChannelStats, MalformedFrame
from blindgate.pets.psi import ecdh, kkrt
from blindgate.pets.psi.errors import ParameterMismatch, PsiError
from blindgate.pets.psi.pool import make_executor

PROTOCOL_NAME = "blindgate-psi"
VERSION = 1
PROTOCOLS = ("kkrt", "ecdh")
MODES = ("intersection", "both", "join", "cardinality")


@dataclass
class PsiResult:
    """What this party ends with. ``matches`` index into the keys it passed in, in output order."""

    protocol: str
    mode: str
    receiver: bool
    own_size: int
    peer_size: int
    size: int | None  # the intersection's size, when this party may know it
    matches: list[int] | None  # None when this party learns no rows
    stats: ChannelStats = field(default_factory=ChannelStats)


def random_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation of range(n) from the OS CSPRNG (argsort of random words)."""
    return np.argsort(np.frombuffer(os.urandom(8 * n), dtype="<u8"), kind="stable")


def match_values(own: np.ndarray, peer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into own, into peer) of equal values, each side's values being distinct.

    Sorting 64-bit prefixes is several times faster than sorting the full byte strings;
    every candidate is then checked on its full width. Should two peer values share a
    prefix (probability ~ n^2 / 2^65), the exact byte-string intersection is used instead.
    """
    if own.size == 0 or peer.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    own_prefix = np.ascontiguousarray(own).view("<u8").reshape(own.size, -1)[:, 0]
    peer_prefix = np.ascontiguousarray(peer).view("<u8").reshape(peer.size, -1)[:, 0]
    order = np.argsort(peer_prefix)
    sorted_prefix = peer_prefix[order]
    if bool(np.any(sorted_prefix[1:] == sorted_prefix[:-1])):
        _, own_index, peer_index = np.intersect1d(own, peer, assume_unique=True, return_indices=True)
        return own_index, peer_index
    slot = np.minimum(np.searchsorted(sorted_prefix, own_prefix), peer.size - 1)
    candidate = np.flatnonzero(sorted_prefix[slot] == own_prefix)
    peer_index = order[slot[candidate]]
    exact = own[candidate] == peer[peer_index]
    return candidate[exact], peer_index[exact]


def check_choice(protocol: str, mode: str) -> None:
    if protocol not in PROTOCOLS:
        raise PsiError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if mode not in MODES:
        raise PsiError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if mode == "cardinality" and protocol != "ecdh":
        raise PsiError("cardinality-only needs --protocol ecdh (KKRT's receiver learns which items match)")


def run_psi(
    channel: Channel,
    keys: Sequence[bytes],
    *,
    receiver: bool,
    protocol: str = "kkrt",
    mode: str = "intersection",
    agreement: dict[str, object] | None = None,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> PsiResult:
    """Run PSI on distinct ``keys`` over ``channel``. ``agreement``: extra settings both must share."""
    check_choice(protocol, mode)
    assert len(set(keys)) == len(keys), "keys must be distinct (inputs.read_keys drops duplicates)"
    start = channel.stats.snapshot()
    settings = {"algorithm": protocol, "mode": mode, "agreement": agreement or {}}
    peer = channel.hello(PROTOCOL_NAME, VERSION, receiver=receiver, size=len(keys), **settings)
    for name, value in settings.items():
        if peer.get(name) != value:
            raise ParameterMismatch(f"the peer runs with a different {name}")
    if peer.get("receiver") is receiver or not isinstance(peer.get("receiver"), bool):
        raise ParameterMismatch("exactly one party must be the receiver")
    peer_size = peer.get("size")
    if not isinstance(peer_size, int) or isinstance(peer_size, bool) or peer_size < 0:
        raise MalformedFrame("the peer's hello carries no valid set size")
    tick = progress or (lambda _: None)
    result = PsiResult(protocol, mode, receiver, len(keys), peer_size, None, None)
    if keys and peer_size:
        if receiver:
            _receiver_side(channel, keys, peer_size, result, workers, tick)
        else:
            _sender_side(channel, keys, peer_size, result, workers, tick)
    else:
        result.size = 0
        result.matches = None if (mode == "cardinality" or (mode == "intersection" and not receiver)) else []
    result.stats = channel.stats.since(start)
    return result


def _receiver_side(
    channel: Channel,
    keys: Sequence[bytes],
    peer_size: int,
    result: PsiResult,
    workers: int | None,
    tick: Callable[[int], None],
) -> None:
    if result.protocol == "ecdh":
        with make_executor(len(keys) + peer_size, workers) as executor:
            own, peer, per_item = ecdh.receive(channel, keys, peer_size, executor, tick)
    else:
        own, peer, per_item = kkrt.receive(channel, keys, peer_size, tick)
    own_index, peer_index = match_values(own, peer)
    result.size = int(own_index.size)
    if result.mode == "cardinality":
        channel.send_json({"size": result.size})
        return
    order = random_permutation(own_index.size)
    own_index, peer_position = own_index[order], peer_index[order] // per_item
    if result.mode == "intersection":
        channel.send_json({"done": True})
    else:
        channel.send_json({"size": result.size})
        channel.send_array(peer_position.astype("<u8"))
    result.matches = (np.sort(own_index) if result.mode != "join" else own_index).tolist()


def _sender_side(
    channel: Channel,
    keys: Sequence[bytes],
    peer_size: int,
    result: PsiResult,
    workers: int | None,
    tick: Callable[[int], None],
) -> None:
    permutation = random_permutation(len(keys))
    shuffled = [keys[i] for i in permutation]
    if result.protocol == "ecdh":
        with make_executor(len(keys) + peer_size, workers) as executor:
            ecdh.send(
                channel, shuffled, peer_size, executor, tick, result.mode == "cardinality", random_permutation
            )
    else:
        kkrt.send(channel, shuffled, peer_size, tick)
    final = channel.recv_json()
    if not isinstance(final, dict):
        raise MalformedFrame("expected the receiver's closing frame")
    if result.mode == "intersection":
        if final.get("done") is not True:
            raise MalformedFrame("expected the receiver's closing frame")
        return
    size = final.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= min(len(keys), peer_size):
        raise MalformedFrame("the receiver reported an impossible intersection size")
    result.size = size
    if result.mode == "cardinality":
        return
    positions = channel.recv_array(np.dtype("<u8"), (size,))
    if size and (int(positions.max()) >= len(keys) or np.unique(positions).size != size):
        raise MalformedFrame("the receiver sent out-of-range or repeated positions")
    own_index = permutation[positions.astype(np.int64)]
    result.matches = (np.sort(own_index) if result.mode != "join" else own_index).tolist()


__all__ = [
    "MODES",
    "PROTOCOLS",
    "VERSION",
    "PsiResult",
    "check_choice",
    "match_values",
    "random_permutation",
    "run_psi",
]
