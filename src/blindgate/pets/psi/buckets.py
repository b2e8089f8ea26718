"""A party's keys split into buckets by a public hash, so a run holds one bucket at a time.

Each normalised key becomes a record (row number, 32-byte BLAKE2b digest of the key);
both protocols work on the digests. A run partitions the records into P buckets by a
public hash (AES under a per-run public seed, over the digest), and only bucket i of one
party can match bucket i of the other, so the protocol runs bucket by bucket and a
party holds one bucket's arrays at a time. P is a power of two that both parties derive
in the hello from both set sizes and both batch sizes, so that the expected bucket is at
most the smaller batch.

Bucket sizes would reveal the histogram of a party's keys under the public hash, so each
party pads every bucket with random dummy digests up to :func:`padded_size`: a size fixed
by its own number of key rows and P alone (a Chernoff bound; some bucket exceeds it with
probability below 2^-40, and then the run retries with another seed). The peer therefore
learns nothing from the bucket sizes beyond the row count it learns in the hello anyway.

:class:`SpilledKeys` keeps the records in temporary files of this party's own machine
(a private directory from :func:`tempfile.mkdtemp`, mode 0700): the spill of the whole
input, then one file per bucket. They hold digests, not keys, but digests of phone
numbers can be brute-forced, so they are personal data: the directory is deleted when the
key set is closed, on success and on error alike. :class:`MemoryKeys` serves callers
that already hold their keys in memory (the library API, joint training).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from blindgate.pets.psi.errors import PsiError

DIGEST_BYTES = 32
RECORD = np.dtype([("row", "<u8"), ("digest", f"S{DIGEST_BYTES}")])
DUMMY_ROW = np.uint64(2**64 - 1)  # rows of padding records: never a real row
OVERFLOW_BITS = 40  # a bucket overflows its padded size with probability below 2^-40
MAX_BUCKETS = 4096
MAX_OPEN_FILES = 256  # bucket files written at once; more buckets take more sweeps
_PERSON = b"bg-psi-key-v2"


class Plan(Protocol):
    """A run's bucket plan (the session's): P buckets, each padded to a size per party."""

    @property
    def buckets(self) -> int: ...

    @property
    def own_limit(self) -> int: ...

    @property
    def peer_limit(self) -> int: ...


def key_digest(key: bytes) -> bytes:
    """The 32-byte digest that stands for a key in both protocols (BLAKE2b, personalised)."""
    return hashlib.blake2b(key, digest_size=DIGEST_BYTES, person=_PERSON).digest()


def records_of(keys: Sequence[bytes]) -> np.ndarray:
    """Records (row = position in ``keys``, digest) for keys held in memory."""
    records = np.empty(len(keys), dtype=RECORD)
    records["row"] = np.arange(len(keys), dtype=np.uint64)
    records["digest"] = np.frombuffer(b"".join(map(key_digest, keys)), dtype=RECORD["digest"])
    return records


def bucket_count(items: int, batch: int | None) -> int:
    """P: the least power of two with ``items / P <= batch`` (1 without a batch limit)."""
    if batch is None or items <= batch:
        return 1
    buckets = 1 << math.ceil(math.log2(-(-items // batch)))
    if buckets > MAX_BUCKETS:
        raise PsiError(
            f"the batch size is too small for these sets: it would take more than {MAX_BUCKETS} buckets"
        )
    return buckets


def padded_size(items: int, buckets: int) -> int:
    """Records per bucket after padding, for ``items`` records spread over ``buckets``.

    Chernoff: for X ~ Bin(items, 1/P) with mean m, Pr[X >= m + d] <= exp(-d^2 / (2m + d)).
    d = (L + sqrt(L^2 + 8mL)) / 2 with L = ln P + 40 ln 2 makes that at most 2^-40 / P, so
    no bucket of P overflows except with probability 2^-40. Never more than ``items``.
    """
    if buckets == 1:
        return items
    mean = items / buckets
    bound = math.log(buckets) + OVERFLOW_BITS * math.log(2)
    slack = (bound + math.sqrt(bound * bound + 8 * mean * bound)) / 2
    return min(items, math.ceil(mean + slack))


def bucket_of(digests: np.ndarray, seed: bytes, buckets: int) -> np.ndarray:
    """Bucket of each digest: AES-128 under the public ``seed`` over its first 16 bytes, mod P."""
    assert buckets & (buckets - 1) == 0, "P is a power of two"
    head = np.ascontiguousarray(
        np.ascontiguousarray(digests).view(np.uint8).reshape(-1, DIGEST_BYTES)[:, :16]
    )
    mixed = Cipher(algorithms.AES(seed), modes.ECB()).encryptor().update(head.tobytes())
    return (np.frombuffer(mixed, dtype="<u8")[::2] & np.uint64(buckets - 1)).astype(np.int64)


def distinct(records: np.ndarray) -> np.ndarray:
    """The first record (lowest row) of each digest, in row order (records come in row order)."""
    _, first = np.unique(records["digest"], return_index=True)
    return records[np.sort(first)]


def pad(records: np.ndarray, size: int) -> np.ndarray:
    """``records`` followed by random dummy records up to ``size`` (dummies never match)."""
    assert records.size <= size
    padded = np.empty(size, dtype=RECORD)
    padded[: records.size] = records
    padded["row"][records.size :] = DUMMY_ROW
    dummies = os.urandom(DIGEST_BYTES * (size - records.size))
    padded["digest"][records.size :] = np.frombuffer(dummies, dtype=RECORD["digest"])
    return padded


class KeySet(ABC):
    """One party's records, partitioned into buckets on demand.

    ``largest`` counts the most records this key set held in one array at any time: the
    figure that shows a run's memory is bounded by the batch, not by the set.
    """

    def __init__(self) -> None:
        self.count = 0  # records: valid key rows, duplicates included
        self.duplicates = 0  # repeated keys dropped so far, over the buckets loaded
        self.largest = 0

    def _held(self, records: int) -> None:
        self.largest = max(self.largest, records)

    @abstractmethod
    def partition(self, buckets: int, seed: bytes, limit: int) -> bool:
        """Split into ``buckets``; False when some bucket has more than ``limit`` distinct keys."""

    @abstractmethod
    def bucket(self, index: int) -> np.ndarray:
        """Bucket ``index``'s distinct records in row order (duplicates counted and dropped)."""

    @abstractmethod
    def close(self) -> None:
        """Forget the records (and delete any files)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class MemoryKeys(KeySet):
    """Records held in memory (the caller holds the keys anyway)."""

    def __init__(self, records: np.ndarray) -> None:
        super().__init__()
        self._records = records
        self.count = int(records.size)
        self._held(self.count)
        self._order = np.arange(self.count)
        self._bounds = np.array([0, self.count])

    def partition(self, buckets: int, seed: bytes, limit: int) -> bool:
        if buckets == 1:  # the whole set, in row order: nothing to hash
            self._order, self._bounds = np.arange(self.count), np.array([0, self.count])
            return True
        ids = bucket_of(self._records["digest"], seed, buckets)
        self._order = np.argsort(ids, kind="stable")  # stable: row order within each bucket
        self._bounds = np.searchsorted(ids[self._order], np.arange(buckets + 1))
        sizes = np.diff(self._bounds)
        return all(distinct(self._slice(int(i))).size <= limit for i in np.flatnonzero(sizes > limit))

    def _slice(self, index: int) -> np.ndarray:
        return self._records[self._order[self._bounds[index] : self._bounds[index + 1]]]

    def bucket(self, index: int) -> np.ndarray:
        raw = self._slice(index)
        unique = distinct(raw)
        self.duplicates += raw.size - unique.size
        return unique

    def close(self) -> None:
        self._records = np.empty(0, dtype=RECORD)


class SpilledKeys(KeySet):
    """Records spilled to temporary files while the input streams in; ``batch`` records per read."""

    def __init__(self, batch: int, directory: Path | None = None) -> None:
        super().__init__()
        assert batch > 0
        self.batch = batch
        self._root = Path(tempfile.mkdtemp(prefix="blindgate-psi-", dir=directory))
        self._spill_path = self._root / "spill"
        self._spill = self._spill_path.open("wb")
        self._pending: list[tuple[int, bytes]] = []
        self._files: list[Path] = [self._spill_path]

    @property
    def directory(self) -> Path:
        return self._root

    def add(self, row: int, key: bytes) -> None:
        """Append the record of one valid key row (input order)."""
        self._pending.append((row, key_digest(key)))
        self.count += 1
        if len(self._pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._held(len(self._pending))
            np.array(self._pending, dtype=RECORD).tofile(self._spill)
            self._pending = []

    def finish(self) -> None:
        """The input is read: write what is buffered."""
        self._flush()
        self._spill.close()

    def _chunks(self, path: Path) -> Iterator[np.ndarray]:
        with path.open("rb") as handle:
            while True:
                chunk = np.fromfile(handle, dtype=RECORD, count=self.batch)
                if chunk.size == 0:
                    return
                self._held(chunk.size)
                yield chunk

    def partition(self, buckets: int, seed: bytes, limit: int) -> bool:
        assert self._spill.closed, "finish() the input first"
        if buckets == 1:
            self._files = [self._spill_path]
        else:
            self._files = [self._root / f"bucket-{i}" for i in range(buckets)]
            for first in range(0, buckets, MAX_OPEN_FILES):
                self._sweep(range(first, min(buckets, first + MAX_OPEN_FILES)), seed, buckets)
        return all(self._fits(path, limit) for path in self._files)

    def _sweep(self, wanted: range, seed: bytes, buckets: int) -> None:
        """One read of the spill, writing the records of the ``wanted`` buckets to their files."""
        handles = [self._files[i].open("wb") for i in wanted]
        try:
            for chunk in self._chunks(self._spill_path):
                ids = bucket_of(chunk["digest"], seed, buckets)
                order = np.argsort(ids, kind="stable")
                bounds = np.searchsorted(ids[order], np.arange(wanted.start, wanted.stop + 1))
                for handle, start, stop in zip(handles, bounds[:-1], bounds[1:], strict=True):
                    chunk[order[start:stop]].tofile(handle)
        finally:
            for handle in handles:
                handle.close()

    def _fits(self, path: Path, limit: int) -> bool:
        """Whether a file holds at most ``limit`` distinct digests (holding at most limit + a batch)."""
        if path.stat().st_size <= limit * RECORD.itemsize:
            return True  # no more records than the limit, duplicates or not
        seen = np.empty(0, dtype=RECORD["digest"])
        for chunk in self._chunks(path):
            seen = np.union1d(seen, chunk["digest"])
            if seen.size > limit:
                return False
        return True

    def bucket(self, index: int) -> np.ndarray:
        kept = np.empty(0, dtype=RECORD)
        raw = 0
        for chunk in self._chunks(self._files[index]):
            raw += chunk.size
            fresh = distinct(chunk)
            fresh = fresh[~np.isin(fresh["digest"], kept["digest"])]  # first occurrence wins
            kept = np.concatenate([kept, fresh])
            self._held(kept.size + chunk.size)
        self.duplicates += raw - kept.size
        return kept

    def close(self) -> None:
        if not self._spill.closed:
            self._spill.close()
        shutil.rmtree(self._root, ignore_errors=True)


__all__ = [
    "DIGEST_BYTES",
    "DUMMY_ROW",
    "MAX_BUCKETS",
    "RECORD",
    "KeySet",
    "MemoryKeys",
    "Plan",
    "SpilledKeys",
    "bucket_count",
    "bucket_of",
    "distinct",
    "key_digest",
    "pad",
    "padded_size",
    "records_of",
]
