"""One PSI run between two parties: the hello, the buckets, the protocol, and what each party ends with.

Modes (what each party learns, beyond both learning the other's number of valid key rows,
duplicates included):

- ``intersection``: the receiver learns which of its rows are shared; the sender nothing.
- ``both``: both learn which of their own rows are shared.
- ``join`` (aligned join): both learn their shared rows and end with them in the same
  order, so row k on one side is row k on the other: bucket by bucket (buckets follow a
  public hash of the key), in a random order the receiver draws within each bucket.
- ``cardinality``: both learn the intersection's size and nothing else (ECDH-PSI:
  ``cardinality``; KKRT: ``kkrt_cardinality``, where the party with more rows is the
  receiver whatever was declared).

The receiver (the party that runs the OPRF and compares) is chosen per run and both
must agree. For ``both`` and ``join`` the sender sends its values in an order it
shuffled secretly, the receiver answers with the positions that matched (in its
random order) and the sender maps them back: the receiver learns nothing about the
sender's row order, and the sender learns exactly the shared rows. Threat model:
semi-honest parties (see ``ecdh`` and ``kkrt`` for each protocol's assumptions).

Bounded memory (``buckets``): the hello carries each party's row count and batch size;
both derive the number of buckets P from them, partition their keys by a public hash
under the receiver's public seed, pad every bucket to a size fixed by their own row
count (so bucket sizes reveal nothing more), and run the protocol bucket by bucket with
one set of base OTs or one ECDH key pair. ``cardinality`` runs bucket by bucket too,
but per-bucket match counts would tell the receiver more than the total, so the count
is taken once over the whole run, in an order the receiver cannot undo: ECDH's sender
returns the run's values in one random order over spill files (``cardinality``,
``shuffle``); KKRT's parties shuffle the run's match words obliviously
(``kkrt_cardinality``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from blindgate.crypto import group
from blindgate.net import Channel, ChannelStats, MalformedFrame
from blindgate.pets.psi import cardinality, ecdh, kkrt, kkrt_cardinality
from blindgate.pets.psi.buckets import (
    DUMMY_ROW,
    KeySet,
    MemoryKeys,
    bucket_count,
    pad,
    padded_size,
    records_of,
)
from blindgate.pets.psi.errors import ParameterMismatch, PsiError
from blindgate.pets.psi.pool import make_executor, ray_address
from blindgate.pets.psi.shuffle import random_permutation

PROTOCOL_NAME = "blindgate-psi"
VERSION = 4  # 4: KKRT's cardinality mode; 3: cardinality in buckets, shuffled over the whole run
PROTOCOLS = ("kkrt", "ecdh")
MODES = ("intersection", "both", "join", "cardinality")
PARTITION_ATTEMPTS = 3

Tick = Callable[[int], None]


@dataclass
class PsiResult:
    """What this party ends with. ``matches`` index into the keys it passed in (or the input's
    rows, for a spilled key set), in output order."""

    protocol: str
    mode: str
    receiver: bool
    own_size: int
    peer_size: int
    size: int | None  # the intersection's size, when this party may know it
    matches: list[int] | None  # None when this party learns no rows
    stats: ChannelStats = field(default_factory=ChannelStats)
    buckets: int = 1
    largest_batch: int = 0  # most records (own or the peer's bucket, a read, a spill file) in one array


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


class KeyProgress:
    """Progress in this party's keys, exact at every bucket's end and at the run's end.

    The protocols tick as their work goes (records hashed, blinded or sent, the peer's
    included); those ticks move the count within the bucket in hand, never past it, and
    the bucket's end sets it to the keys of the buckets done. ``total`` is the key rows
    the party spilled (``keyset.count``, duplicates included): the bar ends on it exactly.
    Callable as a `Tick`, so the protocols' own functions take it as they are.
    """

    def __init__(self, total: int, report: Tick) -> None:
        self.total, self._report = total, report
        self.done = 0
        self._bucket_end = total  # cardinality modes: one span over the whole run

    def __call__(self, n: int) -> None:
        step = min(n, self._bucket_end - self.done)
        if step > 0:
            self.done += step
            self._report(step)

    def bucket(self, keys: int) -> None:
        """A bucket of ``keys`` of this party's keys starts (the last one ended with `bucket_done`)."""
        self._bucket_end = min(self.total, self.done + keys)

    def bucket_done(self) -> None:
        self(self._bucket_end - self.done)

    def finish(self) -> None:
        self._bucket_end = self.total
        self(self.total - self.done)


def check_choice(protocol: str, mode: str) -> None:
    if protocol not in PROTOCOLS:
        raise PsiError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    if mode not in MODES:
        raise PsiError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")


def run_psi(
    channel: Channel,
    keys: Sequence[bytes],
    *,
    receiver: bool,
    protocol: str = "kkrt",
    mode: str = "intersection",
    agreement: dict[str, object] | None = None,
    workers: int | None = None,
    progress: Tick | None = None,
    batch_size: int | None = None,
    ray: str | None = None,
) -> PsiResult:
    """Run PSI on distinct in-memory ``keys`` over ``channel``; ``matches`` index into ``keys``.

    ``agreement``: extra settings both must share. ``batch_size``: records per bucket this
    party wants at most (None: no limit of its own). ``ray``: a Ray address for ECDH's work.
    """
    assert len(set(keys)) == len(keys), "keys must be distinct (inputs.read_keys drops duplicates)"
    with MemoryKeys(records_of(keys)) as keyset:
        return run_psi_keyset(
            channel,
            keyset,
            receiver=receiver,
            protocol=protocol,
            mode=mode,
            agreement=agreement,
            workers=workers,
            progress=progress,
            batch_size=batch_size,
            ray=ray,
        )


@dataclass(frozen=True)
class _Plan:
    buckets: int
    own_limit: int  # padded records per bucket on this side
    peer_limit: int  # and on the peer's
    seed: bytes  # public, from the receiver's hello


def run_psi_keyset(
    channel: Channel,
    keyset: KeySet,
    *,
    receiver: bool,
    protocol: str = "kkrt",
    mode: str = "intersection",
    agreement: dict[str, object] | None = None,
    workers: int | None = None,
    progress: Tick | None = None,
    batch_size: int | None = None,
    ray: str | None = None,
) -> PsiResult:
    """Run PSI on a key set (in memory or spilled to files), bucket by bucket."""
    check_choice(protocol, mode)
    if batch_size is not None and batch_size < 1:
        raise PsiError("the batch size must be at least 1")
    start = channel.stats.snapshot()
    plan, peer_size = _hello(channel, keyset.count, receiver, protocol, mode, agreement, batch_size)
    if protocol == "kkrt" and mode == "cardinality":
        receiver = _larger_set_counts(keyset.count, peer_size, receiver)
    counter = KeyProgress(keyset.count, progress or (lambda _: None))
    result = PsiResult(protocol, mode, receiver, keyset.count, peer_size, None, None, buckets=plan.buckets)
    if keyset.count and peer_size:
        _partition(channel, keyset, plan)
        with _engine(channel, protocol, receiver, plan, workers, ray_address(ray)) as engine:
            if receiver:
                _receiver_side(channel, keyset, plan, result, engine, counter)
            else:
                _sender_side(channel, keyset, plan, result, engine, counter)
        result.largest_batch = max(keyset.largest, plan.own_limit, plan.peer_limit, result.largest_batch)
    else:
        result.size = 0
        result.matches = None if (mode == "cardinality" or (mode == "intersection" and not receiver)) else []
        result.largest_batch = keyset.largest
    counter.finish()
    result.stats = channel.stats.since(start)
    return result


def _hello(
    channel: Channel,
    count: int,
    receiver: bool,
    protocol: str,
    mode: str,
    agreement: dict[str, object] | None,
    batch_size: int | None,
) -> tuple[_Plan, int]:
    """Exchange and check settings; both sides derive the same bucket plan from the two hellos."""
    settings = {"algorithm": protocol, "mode": mode, "agreement": agreement or {}}
    seed = os.urandom(16) if receiver else None
    peer = channel.hello(
        PROTOCOL_NAME,
        VERSION,
        receiver=receiver,
        size=count,
        batch=batch_size,
        seed=seed.hex() if seed else None,
        **settings,
    )
    for name, value in settings.items():
        if peer.get(name) != value:
            raise ParameterMismatch(f"the peer runs with a different {name}")
    if peer.get("receiver") is receiver or not isinstance(peer.get("receiver"), bool):
        raise ParameterMismatch("exactly one party must be the receiver")
    peer_size, peer_batch = peer.get("size"), peer.get("batch")
    if not _is_count(peer_size, 0):
        raise MalformedFrame("the peer's hello carries no valid set size")
    if peer_batch is not None and not _is_count(peer_batch, 1):
        raise MalformedFrame("the peer's hello carries an invalid batch size")
    if seed is None:
        try:
            seed = bytes.fromhex(peer["seed"])
            if len(seed) != 16:
                raise ValueError
        except (TypeError, KeyError, ValueError) as exc:
            raise MalformedFrame("the receiver's hello carries no valid bucket seed") from exc
    assert isinstance(peer_size, int)
    batches = [b for b in (batch_size, peer_batch) if b is not None]
    buckets = bucket_count(max(count, peer_size), min(batches, default=None))
    plan = _Plan(buckets, padded_size(count, buckets), padded_size(peer_size, buckets), seed)
    return plan, peer_size


def _larger_set_counts(count: int, peer_size: int, receiver: bool) -> bool:
    """KKRT's cardinality mode: the party with more rows runs the OPRF, whatever was declared.

    The sender's hint tables grow as the square of its items per receiver bin
    (``kkrt_cardinality``), and both parties learn the count alone, so the roles are
    interchangeable; both sides decide alike from the two announced counts (a tie keeps
    the declared roles).
    """
    return receiver if count == peer_size else count > peer_size


def _is_count(value: object, least: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _partition(channel: Channel, keyset: KeySet, plan: _Plan) -> None:
    """Split the keys into the plan's buckets; both retry with another seed if either overflows."""
    if plan.buckets == 1:
        keyset.partition(1, plan.seed, plan.own_limit)  # one bucket never overflows
        return
    for attempt in range(PARTITION_ATTEMPTS):
        seed = hashlib.blake2b(plan.seed + bytes([attempt]), digest_size=16).digest()
        fits = keyset.partition(plan.buckets, seed, plan.own_limit)
        reply = channel.exchange(b"1" if fits else b"0")
        if reply not in (b"0", b"1"):
            raise MalformedFrame("expected the peer's bucket check")
        if fits and reply == b"1":
            return
    raise PsiError(
        "a bucket overflowed its padded size on every attempt "
        "(each time with probability below 2^-40); please rerun"
    )


class _Engine(Protocol):
    def receive(
        self, digests: np.ndarray, peer_size: int, tick: Tick
    ) -> tuple[np.ndarray, np.ndarray, int]: ...

    def send(self, digests: np.ndarray, peer_size: int, tick: Tick) -> None: ...


class _KkrtEngine:
    """KKRT with one set of base OTs for the whole run (see ``kkrt.Receiver``)."""

    def __init__(self, channel: Channel, receiver: bool) -> None:
        self.receiver = kkrt.Receiver(channel) if receiver else None
        self.sender = None if receiver else kkrt.Sender(channel)

    def receive(self, digests: np.ndarray, peer_size: int, tick: Tick) -> tuple[np.ndarray, np.ndarray, int]:
        assert self.receiver is not None
        return self.receiver.bucket(kkrt.item_digests(digests), peer_size, tick)

    def send(self, digests: np.ndarray, peer_size: int, tick: Tick) -> None:
        assert self.sender is not None
        self.sender.bucket(kkrt.item_digests(digests), peer_size, tick)


class _EcdhEngine:
    """ECDH-PSI with one secret scalar and one worker pool for the whole run."""

    def __init__(self, channel: Channel, executor: Executor) -> None:
        self._channel = channel
        self.executor = executor
        self.scalar = group.random_scalar()

    def receive(self, digests: np.ndarray, peer_size: int, tick: Tick) -> tuple[np.ndarray, np.ndarray, int]:
        return ecdh.receive(self._channel, digests, peer_size, self.executor, tick, self.scalar)

    def send(self, digests: np.ndarray, peer_size: int, tick: Tick) -> None:
        ecdh.send(self._channel, digests, peer_size, self.executor, tick, self.scalar)


@contextmanager
def _engine(
    channel: Channel, protocol: str, receiver: bool, plan: _Plan, workers: int | None, ray: str | None
) -> Iterator[_Engine]:
    if protocol == "kkrt":
        yield _KkrtEngine(channel, receiver)
        return
    items = plan.buckets * (plan.own_limit + plan.peer_limit)
    with make_executor(items, workers, ray) as executor:
        yield _EcdhEngine(channel, executor)


def _receiver_side(
    channel: Channel, keyset: KeySet, plan: _Plan, result: PsiResult, engine: _Engine, tick: KeyProgress
) -> None:
    if result.mode == "cardinality":
        if isinstance(engine, _KkrtEngine):
            assert engine.receiver is not None
            result.size = kkrt_cardinality.count_as_receiver(channel, keyset, plan, engine.receiver, tick)
        else:
            assert isinstance(engine, _EcdhEngine)
            result.size, result.largest_batch = cardinality.count_as_receiver(
                channel, keyset, plan, engine.executor, engine.scalar, tick
            )
        channel.send_json({"size": result.size})
        return
    size, matched = 0, []
    for index in range(plan.buckets):
        records = keyset.bucket(index)
        tick.bucket(records.size)
        own = pad(records, plan.own_limit)
        own_values, peer_values, per_item = engine.receive(own["digest"], plan.peer_limit, tick)
        own_index, peer_index = match_values(own_values, peer_values)
        real = own["row"][own_index] != DUMMY_ROW  # a padding record matches with probability 2^-128
        own_index, peer_index = own_index[real], peer_index[real]
        size += int(own_index.size)
        order = random_permutation(own_index.size)
        own_index, peer_position = own_index[order], peer_index[order] // per_item
        if result.mode in ("both", "join"):
            channel.send_array(peer_position.astype("<u8"))
        matched.append(own["row"][own_index].astype(np.int64))
        tick.bucket_done()
    result.size = size
    channel.send_json({"done": True})
    rows = np.concatenate(matched)
    result.matches = (np.sort(rows) if result.mode != "join" else rows).tolist()


def _sender_side(
    channel: Channel, keyset: KeySet, plan: _Plan, result: PsiResult, engine: _Engine, tick: KeyProgress
) -> None:
    if result.mode == "cardinality":
        if isinstance(engine, _KkrtEngine):
            assert engine.sender is not None
            kkrt_cardinality.shuffle_as_sender(channel, keyset, plan, engine.sender, tick)
        else:
            assert isinstance(engine, _EcdhEngine)
            result.largest_batch = cardinality.shuffle_as_sender(
                channel, keyset, plan, engine.executor, engine.scalar, tick
            )
        result.size = _reported_size(channel, min(keyset.count, result.peer_size))
        return
    learns_rows = result.mode in ("both", "join")
    size, matched = 0, []
    for index in range(plan.buckets):
        records = keyset.bucket(index)
        tick.bucket(records.size)
        shuffled = pad(records, plan.own_limit)
        shuffled = shuffled[random_permutation(shuffled.size)]
        engine.send(shuffled["digest"], plan.peer_limit, tick)
        if learns_rows:
            rows = _matched_rows(channel, shuffled["row"], plan.peer_limit)
            size += rows.size
            matched.append(rows)
        tick.bucket_done()
    final = channel.recv_json()
    if not isinstance(final, dict) or final.get("done") is not True:
        raise MalformedFrame("expected the receiver's closing frame")
    if learns_rows:
        result.size = size
        rows = np.concatenate(matched)
        result.matches = (np.sort(rows) if result.mode != "join" else rows).tolist()


def _reported_size(channel: Channel, most: int) -> int:
    """Cardinality mode: the size the receiver reports, checked to be possible."""
    final = channel.recv_json()
    reported = final.get("size") if isinstance(final, dict) else None
    if not _is_count(reported, 0) or not isinstance(reported, int) or reported > most:
        raise MalformedFrame("the receiver reported an impossible intersection size")
    return reported


def _matched_rows(channel: Channel, shuffled_rows: np.ndarray, peer_limit: int) -> np.ndarray:
    """The receiver's positions for one bucket, checked, as this side's rows."""
    positions = channel.recv_array(np.dtype("<u8"))
    if positions.ndim != 1 or positions.size > min(shuffled_rows.size, peer_limit):
        raise MalformedFrame("the receiver sent too many positions")
    if positions.size and (
        int(positions.max()) >= shuffled_rows.size or np.unique(positions).size != positions.size
    ):
        raise MalformedFrame("the receiver sent out-of-range or repeated positions")
    rows = shuffled_rows[positions.astype(np.int64)]
    if bool(np.any(rows == DUMMY_ROW)):
        raise MalformedFrame("the receiver sent positions of padding records")
    return rows.astype(np.int64)


__all__ = [
    "MODES",
    "PROTOCOLS",
    "VERSION",
    "PsiResult",
    "check_choice",
    "match_values",
    "random_permutation",
    "run_psi",
    "run_psi_keyset",
]
