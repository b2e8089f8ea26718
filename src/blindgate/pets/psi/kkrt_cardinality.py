"""Cardinality mode of KKRT-PSI: both parties learn |X ∩ Y| and nothing else, from OT extension.

In KKRT's other modes the receiver R compares its own OPRF values with the sender S's,
so it learns which of its items matched. Here nobody compares values; the match bits of
R's bins are counted after a shuffle that R cannot undo (the circuit-PSI pattern of
Pinkas, Schneider, Tkachenko, Yanai, Eurocrypt 2019, with a shuffle in place of the
circuit: cardinality needs no more than a count of equal pairs):

1. Bucket by bucket (``buckets``, as in the other modes), R runs KKRT's batched OPRF on
   its cuckoo table (``kkrt.Receiver.bins``) and S evaluates it at each of its items under
   each hash function (``kkrt.Sender.entries``). S programs a table-based OPPRF hint per
   bin (``opprf``) with a fresh random 64-bit target s_i, and sends the hints; R reads
   r_i, equal to s_i exactly when the item in its bin i is one of S's items.
2. Over the whole run's M bins (all buckets, one vector), S draws a uniformly random
   permutation π and the two run the oblivious switching network of ``permute_share``
   on R's vector r: S ends with a, R with b, a ⊕ b = r[π].
3. S sends a ⊕ s[π]; R adds b and holds d[π], d_i = r_i ⊕ s_i: zero exactly at the
   matched bins, a pseudorandom word elsewhere (zero with probability 2^-64 per bin). R
   counts the zeros and reports the count to S (the session's closing frame).

What each learns (semi-honest parties): R sees the OT extension's answers, the hints
(uniformly random words and nonces, see ``opprf``), the switching network's OT pads, and
d[π] for a π it never sees: the number of zeros, and M - count words that are uniformly
random to it (s_i appears nowhere else unmasked), so nothing about which bins, buckets or
items matched. S sees only R's OT-extension matrices (one-time padded) and the count R
reports. Both learn the other's row count, as in every mode. Repeated keys were dropped
before bucketing, and padding records never match (their digests are random), so the count
is that of the distinct keys both hold.

Memory: one padded bucket's arrays, as in the other modes, plus the run's vector of M
64-bit words (r or s, ~1.3 words per R item), the switching network's switch bits (one
byte each, O(M log M)) and the routing's temporaries. ECDH's cardinality mode spills to
disk; this one does not, so a run whose network would have more than
``BATCHES_IN_MEMORY`` wires per record of a padded bucket is refused before any work
(``_check_run``), and ``--batch-size`` keeps bounding a party's memory. The hints grow as
the square of the sender's load per bin, so the session makes the larger set the receiver. Written here: the
protocol glue; the pieces are ``kkrt``, ``opprf`` and ``permute_share``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.psi import kkrt, opprf
from blindgate.pets.psi.buckets import KeySet, Plan, pad
from blindgate.pets.psi.errors import PsiError
from blindgate.pets.psi.permute_share import (
    MAX_ITEMS,
    padded_size,
    permute_as_chooser,
    permute_as_holder,
    route_padded,
)
from blindgate.pets.psi.shuffle import random_permutation

Tick = Callable[[int], None]
HINT_BINS = 1 << 15  # bins of hints per frame
WORDS_PER_FRAME = 1 << 22  # 32 MiB frames of the revealed vector
BATCHES_IN_MEMORY = 64  # the shuffle's wires, at most, per record of a padded bucket
ALWAYS_ALLOWED_WIRES = 1 << 16  # small runs pass whatever their batch


def _slots(receiver_limit: int, sender_limit: int) -> int:
    """Hint slots per bin, fixed by the two padded bucket sizes.

    They grow as the square of the sender's items per bin, which is why the session makes
    the party with more rows the receiver in this mode (about 2.4 items a bin at most).
    """
    return opprf.table_slots(kkrt.HASHES * sender_limit, kkrt.table_size(receiver_limit))


def count_as_receiver(channel: Channel, keyset: KeySet, plan: Plan, oprf: kkrt.Receiver, tick: Tick) -> int:
    """R's side: the intersection's size (the caller reports it to S)."""
    _check_run(plan, kkrt.table_size(plan.own_limit))
    slots = _slots(plan.own_limit, plan.peer_limit)
    outputs = []
    for index in range(plan.buckets):
        own = pad(keyset.bucket(index), plan.own_limit)
        values = oprf.bins(kkrt.item_digests(own["digest"]), tick)
        outputs.append(np.concatenate(list(_read_hints(channel, values, slots))))
    mine = permute_as_holder(channel, np.concatenate(outputs))
    revealed = np.concatenate(list(_received_words(channel, mine.size))) ^ mine
    return int(np.count_nonzero(revealed == 0))


def shuffle_as_sender(channel: Channel, keyset: KeySet, plan: Plan, oprf: kkrt.Sender, tick: Tick) -> None:
    """S's side up to R's report.

    The permutation's size is known from the plan, so S routes it through the switching
    network in a thread while the buckets run (seconds at a million bins, and R waits for
    none of it).
    """
    bins = kkrt.table_size(plan.peer_limit)
    total = _check_run(plan, bins)
    slots = _slots(plan.peer_limit, plan.own_limit)
    order = random_permutation(total)
    with ThreadPoolExecutor(max_workers=1) as pool:
        network = pool.submit(route_padded, order)
        targets: list[np.ndarray] = []
        for index in range(plan.buckets):
            own = pad(keyset.bucket(index), plan.own_limit)
            entry_bins, values = oprf.entries(kkrt.item_digests(own["digest"]), plan.peer_limit, tick)
            targets.extend(_send_hints(channel, entry_bins, values, bins, slots))
        mine = permute_as_chooser(channel, order, network.result())
    masked = mine ^ np.concatenate(targets)[order]
    for start in range(0, masked.size, WORDS_PER_FRAME):
        channel.send(masked[start : start + WORDS_PER_FRAME].astype("<u8").tobytes())


def _check_run(plan: Plan, bins: int) -> int:
    """The run's bins, if one in-memory shuffle of them keeps the batch's bound; both sides
    check alike, from the plan, before any work.

    The shuffle holds the run's words and the switching network in memory, so a run whose
    network has more than ``BATCHES_IN_MEMORY`` times as many wires as a padded bucket has
    records (or than ``ALWAYS_ALLOWED_WIRES``, a few MB whatever the batch) is refused rather
    than let ``--batch-size`` be exceeded.
    """
    total = plan.buckets * bins
    wires, bucket = padded_size(total), max(plan.own_limit, plan.peer_limit)
    if total > MAX_ITEMS or wires > max(BATCHES_IN_MEMORY * bucket, ALWAYS_ALLOWED_WIRES):
        least = -(-wires // BATCHES_IN_MEMORY)  # keys per bucket that would allow these wires
        raise PsiError(
            f"KKRT's cardinality mode shuffles the whole run in memory ({wires:,} wires), more than "
            f"{BATCHES_IN_MEMORY} buckets' worth at this batch size"
            + ("" if total > MAX_ITEMS else f" (a batch of about {least:,} keys would do)")
            + ": use --protocol ecdh, whose cardinality mode spills to disk"
        )
    return total


def _send_hints(
    channel: Channel, entry_bins: np.ndarray, values: np.ndarray, bins: int, slots: int
) -> Iterator[np.ndarray]:
    """Program and send one bucket's hints a frame of bins at a time; yield the targets.

    Frame by frame, so S holds one frame's tables (~16 MiB), not the bucket's (~0.5 KiB a bin).
    """
    order = np.argsort(entry_bins, kind="stable")
    entry_bins, values = entry_bins[order], values[order]
    for start in range(0, bins, HINT_BINS):
        stop = min(bins, start + HINT_BINS)
        first, last = np.searchsorted(entry_bins, [start, stop])
        targets, nonces, tables = opprf.program(
            entry_bins[first:last] - start, values[first:last], stop - start, slots
        )
        channel.send(nonces.astype("<u8").tobytes() + tables.astype("<u8").tobytes())
        yield targets


def _read_hints(channel: Channel, values: np.ndarray, slots: int) -> Iterator[np.ndarray]:
    """R's OPPRF outputs for one bucket, frame by frame of hints."""
    bins = values.shape[0]
    for start in range(0, bins, HINT_BINS):
        stop = min(bins, start + HINT_BINS)
        frame = channel.recv()
        if len(frame) != 8 * (stop - start) * (slots + 1):
            raise MalformedFrame("expected a frame of OPPRF hints")
        words = np.frombuffer(frame, dtype="<u8")
        nonces, tables = words[: stop - start], words[stop - start :].reshape(stop - start, slots)
        yield opprf.evaluate(values[start:stop], nonces, tables)


def _received_words(channel: Channel, total: int) -> Iterator[np.ndarray]:
    for start in range(0, total, WORDS_PER_FRAME):
        frame = channel.recv()
        if len(frame) != 8 * min(WORDS_PER_FRAME, total - start):
            raise MalformedFrame("expected a frame of the shuffled vector")
        yield np.frombuffer(frame, dtype="<u8")


__all__ = ["count_as_receiver", "shuffle_as_sender"]
