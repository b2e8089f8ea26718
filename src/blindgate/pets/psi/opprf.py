"""A batched oblivious programmable PRF over KKRT's bins, table-based (for cardinality mode).

Kolesnikov, Matania, Pinkas, Rosulek, Trieu, "Practical multi-party private set
intersection from symmetric-key techniques" (CCS 2017), section 5's table-based OPPRF,
on top of ``kkrt``'s batched OPRF. After the OPRF, receiver R holds w_i = F_i(x_i) for
the item x_i in each of its cuckoo bins i; sender S can evaluate F_i on any input. S picks
a random 64-bit target s_i per bin and sends a *hint* per bin such that R, from w_i and
the hint, computes r_i with r_i = s_i exactly when x_i is one of S's items hashed to bin i
(under the hash function R used), and a value unrelated to s_i otherwise.

The hint of bin i is a nonce v_i and a table T_i of ``slots`` 64-bit words. Split every
OPRF value into a 64-bit key k(.) and a 64-bit value u(.). S draws v_i (a random odd
64-bit multiplier) until the multiply-shift hash slot(k) = (v_i·k mod 2^64) >> (64 - log2
slots) places the keys of its entries in bin i in distinct slots, writes s_i ⊕ u(F_i(y))
into each entry's slot and random words elsewhere. R reads r_i = T_i[slot(k(w_i))] ⊕ u(w_i).

What R learns: every word of T_i is uniformly random to it (a random filler, or s_i
masked by u of an OPRF value it cannot compute), and v_i is a uniformly random odd number
whatever S's keys are (each nonce is good for random keys with the same probability), so
the hints say nothing about S's items, nor about how many fell into a bin: every bin's
table has the same size, fixed by both set sizes. For a bin whose item is not S's, r_i is
a pseudorandom word, equal to s_i with probability 2^-64. S learns nothing (it only sends).
Semi-honest parties, as ``kkrt``.

Table size: S's 3·n_S entries fall into m bins, Binomial(3·n_S, 1/m) per bin. ``slots``
is the least power of two at least the load that some bin exceeds with probability below
2^-40 (the exact binomial tail), doubled until a bin at that load needs at most 2^10
expected nonce draws; the search stops at 64 times that, so a run fails (and says so)
with probability below about 2^-40. Written here because no maintained Python library
offers an OPPRF; only multiply-shift hashing, NumPy and AES-CTR (``pets.mpc.prg``) are used.
"""

from __future__ import annotations

import math

import numpy as np

from blindgate.pets.mpc.prg import Prg, new_seed
from blindgate.pets.psi.errors import PsiError

FAILURE_BITS = 40
EXPECTED_DRAWS = 1 << 10
DRAW_BUDGET = 64 * EXPECTED_DRAWS
CANDIDATE_ENTRIES = 1 << 21  # (entry, nonce) pairs tried in one pass: bounds the pass's arrays


def _tail(trials: int, p: float, load: int) -> float:
    """Pr[Binomial(trials, p) > load], summed in log space (terms fall off fast)."""
    total = 0.0
    for k in range(load + 1, min(trials, load + 400) + 1):
        log_term = (
            math.lgamma(trials + 1)
            - math.lgamma(k + 1)
            - math.lgamma(trials - k + 1)
            + k * math.log(p)
            + (trials - k) * math.log1p(-p)
        )
        total += math.exp(log_term)
    return total


def _draws(load: int, slots: int) -> float:
    """Expected nonce draws until ``load`` random keys land in distinct slots of ``slots``."""
    good = 1.0
    for j in range(load):
        good *= 1 - j / slots
    return math.inf if good == 0 else 1 / good


def max_load(entries: int, bins: int) -> int:
    """The load some bin exceeds with probability below 2^-40 (union bound over the bins)."""
    load = 0
    while bins * _tail(entries, 1 / bins, load) > 2.0**-FAILURE_BITS:
        load += 1
    return load


def table_slots(entries: int, bins: int) -> int:
    """Slots per bin's table for S's ``entries`` over R's ``bins`` (both public)."""
    load = max_load(entries, bins)
    slots = 1 << max(1, math.ceil(math.log2(max(load, 1))))
    while _draws(load, slots) > EXPECTED_DRAWS:
        slots *= 2
    return slots


def _random_words(*shape: int) -> np.ndarray:
    """Uniform words from AES-CTR under a fresh key (the tables are large: os.urandom is 5x slower)."""
    return Prg(new_seed()).uint64(shape)


def split(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(key, value) words of 16-byte OPRF values, (n,) uint64 each."""
    words = np.ascontiguousarray(values).view("<u8").reshape(-1, 2)
    return words[:, 0], words[:, 1]


def _slot(keys: np.ndarray, nonces: np.ndarray, slots: int) -> np.ndarray:
    shift = np.uint64(64 - int(math.log2(slots)))
    return ((keys * nonces) >> shift).astype(np.int64)


def program(
    bins: np.ndarray, values: np.ndarray, table_bins: int, slots: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """S's hints: (targets (m,), nonces (m,), tables (m, slots)), all uint64.

    ``bins`` (k,) and ``values`` (k, 16) bytes: each entry's bin and OPRF value.
    """
    keys, words = split(values)
    order = np.argsort(bins, kind="stable")
    bins, keys, words = bins[order], keys[order], words[order]
    nonces = _find_nonces(bins, keys, table_bins, slots)
    targets = _random_words(table_bins)
    tables = _random_words(table_bins, slots)
    tables[bins, _slot(keys, nonces[bins], slots)] = targets[bins] ^ words
    return targets, nonces, tables


def _find_nonces(bins: np.ndarray, keys: np.ndarray, table_bins: int, slots: int) -> np.ndarray:
    """A random odd multiplier per bin that sends its keys (sorted by bin) to distinct slots.

    Bins with fewer than two keys take their first draw. The others are searched together:
    each pass tries several fresh candidates per unresolved bin, as many as keep a pass to
    about ``CANDIDATE_ENTRIES`` (entry, candidate) pairs, and keeps the first good one.
    """
    nonces = _random_words(table_bins) | np.uint64(1)
    starts = np.searchsorted(bins, np.arange(table_bins + 1))
    loads = np.diff(starts)
    if loads.size and int(loads.max()) > slots:
        raise PsiError("a bin holds more entries than its table (probability below 2^-40); please rerun")
    pending = np.flatnonzero(loads >= 2)
    drawn = 0
    while pending.size:
        per_bin = int(np.clip(CANDIDATE_ENTRIES // int(loads[pending].sum()), 1, EXPECTED_DRAWS))
        if drawn > DRAW_BUDGET:
            raise PsiError(
                "no nonce put a bin's entries in distinct slots (probability below 2^-40); please rerun"
            )
        drawn += per_bin
        candidates = _random_words(pending.size, per_bin) | np.uint64(1)
        good = _distinct(bins, keys, starts, loads, pending, candidates, slots)
        found = good.any(axis=1)
        nonces[pending[found]] = candidates[found, good[found].argmax(axis=1)]
        pending = pending[~found]
    return nonces


def _distinct(
    bins: np.ndarray,
    keys: np.ndarray,
    starts: np.ndarray,
    loads: np.ndarray,
    pending: np.ndarray,
    candidates: np.ndarray,
    slots: int,
) -> np.ndarray:
    """(pending, per_bin) bool: does candidate c map bin b's keys to distinct slots?"""
    counts = loads[pending]
    entry = np.repeat(starts[pending], counts) + (
        np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    owner = np.repeat(np.arange(pending.size), counts)  # index into pending of each entry
    per_bin = candidates.shape[1]
    slot = _slot(keys[entry][:, None], candidates[owner], slots)  # (entries, per_bin)
    tag = (owner[:, None] * per_bin + np.arange(per_bin)[None, :]) * slots + slot
    ordered = np.sort(tag, axis=None)
    clash = ordered[1:][ordered[1:] == ordered[:-1]] // slots
    good = np.ones(pending.size * per_bin, dtype=bool)
    good[clash] = False
    return good.reshape(pending.size, per_bin)


def evaluate(values: np.ndarray, nonces: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """R's outputs r_i for its per-bin OPRF values (m, 16) bytes and the hints: (m,) uint64."""
    keys, words = split(values)
    slot = _slot(keys, nonces, tables.shape[1])
    return tables[np.arange(tables.shape[0]), slot] ^ words


__all__ = ["evaluate", "max_load", "program", "split", "table_slots"]
