"""Spill files for cardinality mode: an external shuffle (the sender) and a partitioned count
(the receiver), so neither party holds more than a bounded multiple of one bucket.

Hand-written here because both are a few dozen lines over NumPy and files, and what
matters is exactly what they put on disk and how uniform the shuffle is (below).

What is on disk: group elements, 32 bytes each, in a private directory of this party's
machine (:class:`SpillDirectory`: :func:`tempfile.mkdtemp`, mode 0700, removed on
success and on error). The receiver's files hold H(y)^(ab) and H(x)^(ab), blinded by
both parties' fresh keys; the sender's hold H(y)^(ab) and its own H(x)^a. No key, no
key digest, no scalar and no random seed is ever written: scalars and the shuffle's
randomness live in memory and die with the run.

**The external shuffle** (:class:`ExternalShuffle`) returns a sequence of N values in a
uniformly random order without holding it: each value, as it is computed, is appended
to one of K files (K a power of two) chosen independently and uniformly (the low bits
of OS random words: exactly uniform, since K divides 2^64); once all are written, the
files are read in a fixed order 0..K-1, each is permuted uniformly in memory, and
streamed out.

*Claim: the output order is a uniformly random permutation of the input, and stays so
even given the files' sizes.* Let F(i) be value i's file and s_k = |F^-1(k)|. Fix an
output order pi (position j holds value pi(j)) and sizes s with sum N. The output is pi
with sizes s exactly when (1) the values of positions [s_0 + ... + s_(k-1), s_0 + ...
+ s_k) are the ones assigned to file k, for each k: one assignment F out of K^N, so
probability K^-N; and (2) each file's shuffle puts its s_k values in the order pi
asks: probability 1/s_k!, independently. So Pr[pi, s] = K^-N * prod_k 1/s_k!, which
does not depend on pi: given any sizes, every order is equally likely. Summing over s,
Pr[pi] = K^-N (1/N!) sum_s N!/prod_k s_k! = K^-N K^N / N! = 1/N! (the multinomial
theorem). The file sizes (and so the output's file boundaries) are independent of the
order; the frames on the wire have sizes fixed by N anyway (``ecdh.send_stream``).
The in-memory shuffle is :func:`random_permutation`, an argsort of 64-bit words from
the OS CSPRNG: uniform except when two words tie, which happens with probability
below s^2 / 2^65 for a file of s values (2^-33 for s = 2^16), the shuffle's whole
distance from uniform.

**The partitioned count** (:class:`PartitionedCount`) counts the values two streams
have in common: each value goes to partition (bytes 8..15 of its encoding, as a
little-endian integer) mod K, the same function on both streams, so equal values meet
in the same partition, and the count is the sum over partitions of the distinct
values common to both (``np.intersect1d``: a value repeated on one side counts once).
Bytes 8..15 rather than the first ones: a ristretto255 encoding is a non-negative field
element, so the lowest bit of byte 0 is always 0; the middle bytes of H(.)^(ab) are
pseudorandom.

**Sizes.** With N values spread over K = the least power of two with N / K <= L (L the
run's padded bucket size), a file (or partition) holds N / K <= L values on average,
and by the Chernoff bound of ``buckets.padded_size`` more than ``padded_size(N, K)`` (at
most L + sqrt(2 L (ln K + 28)) + ln K + 28) only with probability below 2^-40: a bounded
multiple of one bucket, whatever N. (The bound is not enforced: a larger file is read
anyway, at that cost in memory; the partition of values a dishonest peer chose is
outside the semi-honest model.) While values arrive they are appended to files kept
open (at most ``MAX_OPEN_FILES`` of them; beyond, values are buffered up to L and each
flush opens the files it touches).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import numpy as np

from blindgate.crypto import group

ELEMENT = np.dtype(f"S{group.ELEMENT_BYTES}")
MAX_OPEN_FILES = 128  # per spill set; a party has two sets open at once


def random_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation of range(n) from the OS CSPRNG (argsort of random words)."""
    return np.argsort(np.frombuffer(os.urandom(8 * n), dtype="<u8"), kind="stable")


def file_count(total: int, limit: int) -> int:
    """K: the least power of two with ``total / K <= limit`` (1 for an empty or small total)."""
    assert limit >= 1
    if total <= limit:
        return 1
    return 1 << math.ceil(math.log2(-(-total // limit)))


def uniform_files(count: int, files: int) -> np.ndarray:
    """An independent, exactly uniform file index in [0, files) for each of ``count`` values."""
    assert files & (files - 1) == 0, "a power of two divides 2^64: no modulo bias"
    words = np.frombuffer(os.urandom(8 * count), dtype="<u8")
    return (words & np.uint64(files - 1)).astype(np.int64)


def partition_of(values: np.ndarray, files: int) -> np.ndarray:
    """The partition of each encoded group element: bytes 8..15, little-endian, mod ``files``."""
    assert files & (files - 1) == 0
    raw = np.ascontiguousarray(values).view(np.uint8).reshape(-1, group.ELEMENT_BYTES)
    middle = np.ascontiguousarray(raw[:, 8:16]).view("<u8").reshape(-1)
    return (middle & np.uint64(files - 1)).astype(np.int64)


class SpillDirectory:
    """A private temporary directory (mode 0700), removed with everything in it on close."""

    def __init__(self, parent: Path | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="blindgate-psi-", dir=parent))

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


class SpillFiles:
    """``count`` append-only files of group elements; values come in with their file index."""

    def __init__(self, root: Path, name: str, count: int, flush_at: int) -> None:
        self.count = count
        self.largest = 0  # most values held in one array: a file read back, or the buffer
        self._paths = [root / f"{name}-{index}" for index in range(count)]
        for path in self._paths:
            path.touch()
        self._handles: list[IO[bytes]] | None = None
        if count <= MAX_OPEN_FILES:
            self._handles = [path.open("ab") for path in self._paths]
        self._flush_at = 0 if self._handles is not None else flush_at
        self._values: list[np.ndarray] = []
        self._files: list[np.ndarray] = []
        self._buffered = 0

    def add(self, values: np.ndarray, files: np.ndarray) -> None:
        """Append ``values[i]`` to file ``files[i]`` (buffered while files are not kept open)."""
        self._values.append(values)
        self._files.append(files)
        self._buffered += values.size
        if self._buffered >= self._flush_at:
            self._flush()

    def _flush(self) -> None:
        if not self._buffered:
            return
        if len(self._values) > 1:  # (a single piece is the caller's own array: a frame)
            self.largest = max(self.largest, self._buffered)
        values, files = np.concatenate(self._values), np.concatenate(self._files)
        self._values, self._files, self._buffered = [], [], 0
        order = np.argsort(files, kind="stable")
        bounds = np.searchsorted(files[order], np.arange(self.count + 1))
        for index in np.flatnonzero(np.diff(bounds)):
            data = values[order[bounds[index] : bounds[index + 1]]].tobytes()
            if self._handles is not None:
                self._handles[index].write(data)
            else:
                with self._paths[index].open("ab") as handle:
                    handle.write(data)

    def finish(self) -> None:
        """Everything is added: write what is buffered and close the files."""
        self._flush()
        for handle in self._handles or ():
            handle.close()
        self._handles = None

    def read(self, index: int) -> np.ndarray:
        values = np.fromfile(self._paths[index], dtype=ELEMENT)
        self.largest = max(self.largest, values.size)
        return values

    def close(self) -> None:
        """Close any open file (the directory's owner deletes them)."""
        for handle in self._handles or ():
            handle.close()
        self._handles = None


class ExternalShuffle:
    """``total`` values appended as they are computed, read back in a uniformly random order.

    See the module docstring for why the order is uniform. ``limit``: the values one file
    should hold on average (the run's padded bucket size).
    """

    def __init__(self, root: Path, name: str, total: int, limit: int) -> None:
        self.total = total
        self._added = 0
        self._files = SpillFiles(root, name, file_count(total, limit), limit)

    @property
    def largest(self) -> int:
        return self._files.largest

    def add(self, values: np.ndarray) -> None:
        assert self._added + values.size <= self.total, "more values than announced"
        self._added += values.size
        self._files.add(values, uniform_files(values.size, self._files.count))

    def shuffled(self) -> Iterator[np.ndarray]:
        """The values, a file at a time: files in order, each in a uniformly random order."""
        assert self._added == self.total, "every value must be in before the first goes out"
        self._files.finish()
        for index in range(self._files.count):
            values = self._files.read(index)
            yield values[random_permutation(values.size)]

    def close(self) -> None:
        self._files.close()


class PartitionedCount:
    """The number of distinct values two streams share, counted one partition at a time."""

    def __init__(self, root: Path, own_total: int, peer_total: int, limit: int) -> None:
        files = file_count(max(own_total, peer_total), limit)
        self._own = SpillFiles(root, "own", files, limit)
        self._peer = SpillFiles(root, "peer", files, limit)

    @property
    def largest(self) -> int:
        return max(self._own.largest, self._peer.largest)

    def add_own(self, values: np.ndarray) -> None:
        self._own.add(values, partition_of(values, self._own.count))

    def add_peer(self, values: np.ndarray) -> None:
        self._peer.add(values, partition_of(values, self._peer.count))

    def count(self) -> int:
        """Sum over partitions of the distinct values in both (equal values share a partition)."""
        self._own.finish()
        self._peer.finish()
        return sum(
            int(np.intersect1d(self._own.read(index), self._peer.read(index)).size)
            for index in range(self._own.count)
        )

    def close(self) -> None:
        self._own.close()
        self._peer.close()


__all__ = [
    "ELEMENT",
    "MAX_OPEN_FILES",
    "ExternalShuffle",
    "PartitionedCount",
    "SpillDirectory",
    "SpillFiles",
    "file_count",
    "partition_of",
    "random_permutation",
    "uniform_files",
]
