"""Cardinality mode of ECDH-PSI with memory bounded by the batch: both parties learn |X ∩ Y| only.

Hand-written: the protocol is ``ecdh``'s; what is new is the order in which the sender
returns values and how the receiver counts, both over spill files (``shuffle``).

The run is split into the session's buckets (a public hash of the key, each padded to a
size fixed by the party's row count: ``buckets``), so that each party holds one bucket
at a time and drops repeated keys bucket by bucket. Counting matches per bucket would
tell the receiver R the intersection's size per bucket, which is more than the total;
so the sender S hides the buckets:

1. R, bucket by bucket, sends H(y)^b for its padded bucket (dummies included).
2. S, bucket by bucket, raises them to a, and computes H(x)^a for its own padded
   bucket; it appends both to two external shuffles (``shuffle.ExternalShuffle``) and
   answers only "bucket done" (one constant byte). R sends bucket i + 1 before it
   waits for bucket i's "done": the two keep working at once, and neither waits on
   the other for more than about one bucket's work, whatever the run's size (without
   it R, its frames all in the socket's buffers, would wait for S's whole run).
3. S streams every H(y)^(ab) of the run in one uniformly random order over the whole
   run, then every H(x)^a of the run likewise, in frames whose sizes depend on the
   totals alone. R cannot tell which bucket, let alone which of its items, a value
   came from.
4. R appends the H(y)^(ab) it gets and the H(x)^(ab) it computes to a partitioned
   count (``shuffle.PartitionedCount``), counts the distinct values both hold, and
   sends the total to S. Dummies never match (their digests are random: 2^-128), and
   repeated keys were dropped before blinding, so the count is that of the distinct
   keys both hold, as in the one-bucket mode before it.

What each learns: R, the two padded totals (fixed by both row counts), then values in
an order independent of its own, i.e. a uniformly random multiset of H(y)^(ab) and
H(x)^(ab): the count of common values and nothing about which; S, only H(y)^b (random
to it) and then the total R reports. Each party's memory: one padded bucket of
digests and values, one file of the shuffle or one partition pair, and the buffers
of ``shuffle.SpillFiles``; what is on disk is described in ``shuffle``.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor

import numpy as np

from blindgate.crypto import group
from blindgate.net import Channel, MalformedFrame
from blindgate.pets.psi import ecdh
from blindgate.pets.psi.buckets import KeySet, Plan, pad
from blindgate.pets.psi.shuffle import ExternalShuffle, PartitionedCount, SpillDirectory

Tick = Callable[[int], None]
BUCKET_DONE = b"\x01"


def _elements(frame: bytes) -> np.ndarray:
    return np.frombuffer(frame, dtype=ecdh.ELEMENT)


def _bucket_done(channel: Channel) -> None:
    if channel.recv() != BUCKET_DONE:
        raise MalformedFrame("expected the sender's end-of-bucket frame")


def count_as_receiver(
    channel: Channel,
    keyset: KeySet,
    plan: Plan,
    executor: Executor,
    scalar: bytes,
    tick: Tick,
) -> tuple[int, int]:
    """R's side: (the intersection's size, most values held in one spill array). Sends nothing
    after the blinded buckets: the caller reports the size to S."""
    for index in range(plan.buckets):
        own = pad(keyset.bucket(index), plan.own_limit)
        ecdh.send_blinded(channel, own["digest"], executor, tick, scalar)
        if index:  # one bucket ahead of the sender, no more
            _bucket_done(channel)
    _bucket_done(channel)
    own_total, peer_total = plan.buckets * plan.own_limit, plan.buckets * plan.peer_limit
    with SpillDirectory() as spill:
        counter = PartitionedCount(spill.path, own_total, peer_total, max(plan.own_limit, plan.peer_limit))
        try:
            for frame in ecdh.received(channel, own_total):
                counter.add_own(_elements(frame))
                tick(len(frame) // group.ELEMENT_BYTES)
            for frame in ecdh.exponentiated(channel, peer_total, executor, scalar):
                counter.add_peer(_elements(frame))
                tick(len(frame) // group.ELEMENT_BYTES)
            return counter.count(), counter.largest
        finally:
            counter.close()


def shuffle_as_sender(
    channel: Channel,
    keyset: KeySet,
    plan: Plan,
    executor: Executor,
    scalar: bytes,
    tick: Tick,
) -> int:
    """S's side up to R's report: returns the most values held in one spill array."""
    limit = max(plan.own_limit, plan.peer_limit)
    with SpillDirectory() as spill:
        theirs = ExternalShuffle(spill.path, "theirs", plan.buckets * plan.peer_limit, limit)
        mine = ExternalShuffle(spill.path, "mine", plan.buckets * plan.own_limit, limit)
        try:
            for index in range(plan.buckets):
                for frame in ecdh.exponentiated(channel, plan.peer_limit, executor, scalar):
                    theirs.add(_elements(frame))
                    tick(len(frame) // group.ELEMENT_BYTES)
                own = pad(keyset.bucket(index), plan.own_limit)
                for frame in ecdh.blinded(own["digest"], executor, scalar):
                    mine.add(_elements(frame))
                    tick(len(frame) // group.ELEMENT_BYTES)
                channel.send(BUCKET_DONE)
            ecdh.send_stream(channel, theirs.shuffled(), tick)
            ecdh.send_stream(channel, mine.shuffled(), tick)
            return max(theirs.largest, mine.largest)
        finally:
            theirs.close()
            mine.close()


__all__ = ["BUCKET_DONE", "count_as_receiver", "shuffle_as_sender"]
