"""The additively homomorphic layer of tree training: HEU's Okamoto-Uchiyama, packed.

Ant's HEU (PyPI ``sf-heu``) does every homomorphic operation, vectorised in C++ over
whole arrays (its ``heu.numpy`` API): encryption, the per-bin bucket sums
(``batch_feature_wise_bucket_sum``, made for this job), decryption, serialisation.
Nothing here is hand-written cryptography; this module only packs and unpacks numbers,
and plans which bins the network sums and which it derives by subtraction (:class:`DominantBins`).

Packing: a row's gradient g and hessian h travel in one ciphertext, as the integer
``G * 2^64 + H`` with ``G = round(g * 2^24)`` (signed) and ``H = round(h * 2^24)``
(non-negative). Sums of such integers stay exact as long as the H part stays below
2^64 (2^40 rows) and the whole below half the plaintext space (OU-2048: about 682 bits),
so one decryption yields both sums of a bin; the sign of G survives because the
plaintext is read as a signed integer.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from blindgate.pets.ml.errors import MlPeerError

# HEU's C++ thread pool reads its size once, at import: use the machine's cores.
os.environ.setdefault("YACL_NUM_THREADS", str(os.cpu_count() or 1))

from heu import numpy as hnp
from heu import phe

SCHEME = "ou"
KEY_BITS = 2048
SCALE_BITS = 24
SLOT_BITS = 64
SKIP_FRACTION = 0.2  # a column's dominant bin is derived, not summed, from this share of rows


@dataclass
class HeCosts:
    """Homomorphic operations done, and the seconds they took (for the benchmark's floor)."""

    encryptions: int = 0
    decryptions: int = 0
    additions: int = 0
    encrypt_s: float = 0.0
    zeros_ahead: int = 0  # encryptions of zero made ahead, on a thread, while waiting
    zeros_ahead_s: float = 0.0
    decrypt_s: float = 0.0
    add_s: float = 0.0


def quantise(values: np.ndarray) -> np.ndarray:
    return np.rint(values * (1 << SCALE_BITS)).astype(np.int64)


def pack(grad: np.ndarray, hess: np.ndarray) -> np.ndarray:
    """One Python integer per row: G * 2^64 + H (an object array, HEU's big-integer input)."""
    g, h = quantise(grad), quantise(hess)
    assert (h >= 0).all()
    packed: np.ndarray = g.astype(object) * (1 << SLOT_BITS) + h.astype(object)
    return packed


def unpack(sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums of packed integers back to (sum g, sum h) as floats."""
    mask = (1 << SLOT_BITS) - 1
    h = np.array([int(v) & mask for v in sums], dtype=np.float64)
    g = np.array([(int(v) - (int(v) & mask)) >> SLOT_BITS for v in sums], dtype=np.float64)
    scale = float(1 << SCALE_BITS)
    return g / scale, h / scale


class SecretKeyHolder:
    """The label holder's side: key pair, encryption of its gradients, decryption of sums."""

    def __init__(self, key_bits: int = KEY_BITS) -> None:
        self.kit = hnp.setup(phe.SchemaType.OU, key_bits)
        self.encoder = self.kit.bigint_encoder()
        self.costs = HeCosts()
        self.pool: ZeroPool | None = None

    def public_key(self) -> bytes:
        return bytes(self.kit.public_key().serialize())

    def start_pool(self, capacity: int, budget: int) -> None:
        """Make encryptions of zero ahead while we wait: at most ``capacity`` held (one tree's
        rows), none once ``budget`` rows (all trees' rows) are encrypted or in stock."""
        self.stop_pool()
        self.pool = ZeroPool(self, capacity, budget)

    def stop_pool(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.costs.zeros_ahead, self.costs.zeros_ahead_s = self.pool.made, self.pool.seconds
            self.pool = None

    def zeros(self, count: int) -> Any:
        """``count`` fresh encryptions of zero."""
        return self.kit.encryptor().encrypt(
            hnp.array(np.zeros(count, dtype=np.int64).astype(object), self.encoder)
        )

    def encrypt(self, grad: np.ndarray, hess: np.ndarray) -> bytes:
        """One ciphertext per row: a zero made ahead plus the row's packed plaintext (the same
        distribution as a fresh encryption; each zero is used once), fresh where none is left."""
        started = time.perf_counter()
        plain = hnp.array(pack(grad, hess), self.encoder)
        count = len(grad)
        pieces = self.pool.take(count) if self.pool is not None else []
        if not pieces:
            rows = self.kit.encryptor().encrypt(plain)
        else:
            rows = self.kit.evaluator().add(self._ahead(pieces, count), plain)
        self.costs.encrypt_s += time.perf_counter() - started
        self.costs.encryptions += rows.shape[0]
        return bytes(rows.serialize())

    def _ahead(self, pieces: list[Any], count: int) -> Any:
        """``count`` zeros: the pool's pieces in order, then fresh ones; every slot set once."""
        zeros = pieces[0][[0] * count]
        done = 0
        for piece in pieces:
            size = min(piece.shape[0], count - done)
            zeros[list(range(done, done + size))] = piece[list(range(size))]
            done += size
        if done < count:
            zeros[list(range(done, count))] = self.zeros(count - done)
        return zeros

    def decrypt_sums(self, blob: bytes, expected: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            sums = hnp.CiphertextArray.load_from(blob)
        except Exception as exc:  # HEU raises its own runtime error on bad bytes
            raise MlPeerError("the peer sent unreadable ciphertexts") from exc
        if sums.size != expected:
            raise MlPeerError("the peer sent a histogram of the wrong size")
        started = time.perf_counter()
        plain = self.kit.decryptor().decrypt(sums).to_numpy(self.encoder).reshape(-1)
        self.costs.decrypt_s += time.perf_counter() - started
        self.costs.decryptions += expected
        return unpack(plain)


class ZeroPool:
    """Encryptions of zero made on a background thread while the wallet waits for the network.

    OU encryption is ``g^m * h^r mod n``; the ``h^r`` part, two thirds of the work, does not
    depend on the message. So the wallet encrypts zeros ahead (HEU's encryptor, fresh
    randomness each) while the network sums a tree's levels, and at the next tree a row's
    ciphertext is a zero plus the row's plaintext (HEU's ciphertext-plaintext addition):
    the same ciphertext distribution as a direct encryption. Each zero is handed out once
    and then dropped. Bounded: at most ``capacity`` zeros are held, made ``PIECE`` at a
    time (HEU holds the GIL while it works, so a piece is kept short: the main thread waits
    for at most one piece before it decrypts or answers).
    """

    PIECE = 512

    def __init__(self, holder: SecretKeyHolder, capacity: int, budget: int) -> None:
        self.holder = holder
        self.capacity = capacity
        self.budget = budget
        self.made, self.seconds = 0, 0.0
        self._pieces: deque[Any] = deque()
        self._stock = 0
        self._lock = threading.Lock()
        self._room = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="he-zero-pool", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                if self.holder.costs.encryptions + self._stock >= self.budget:
                    return  # every row the run will encrypt is covered: more would be wasted
                full = self._stock + self.PIECE > self.capacity
                if full:
                    self._room.clear()
            if full:
                self._room.wait(1.0)
                continue
            started = time.perf_counter()
            piece = self.holder.zeros(self.PIECE)
            self.seconds += time.perf_counter() - started
            with self._lock:
                self._pieces.append(piece)
                self._stock += self.PIECE
                self.made += self.PIECE

    def take(self, count: int) -> list[Any]:
        """Pieces covering up to ``count`` rows (fewer, or none, when the pool is short)."""
        taken: list[Any] = []
        with self._lock:
            while self._pieces and len(taken) * self.PIECE < count:
                taken.append(self._pieces.popleft())
                self._stock -= self.PIECE
            self._room.set()
        return taken

    def close(self) -> None:
        self._closed.set()
        self._room.set()
        self._thread.join(timeout=30)


class PublicKeyHolder:
    """The other party's side: sums ciphertexts per bin under the label holder's public key."""

    def __init__(self, public_key: bytes) -> None:
        try:
            key = phe.PublicKey.load_from(public_key)
        except Exception as exc:
            raise MlPeerError("the peer sent an unreadable public key") from exc
        self.kit = hnp.setup(key)
        self.costs = HeCosts()
        self.chunks: list[Any] = []

    def start_rows(self) -> None:
        self.chunks = []

    def add_rows(self, blob: bytes, expected: int) -> Any:
        """Take one chunk of the label holder's encrypted rows; return it."""
        try:
            chunk = hnp.CiphertextArray.load_from(blob)
        except Exception as exc:  # HEU raises its own runtime error on bad bytes
            raise MlPeerError("the peer sent unreadable ciphertexts") from exc
        if chunk.shape[0] != expected or chunk.size != expected:
            raise MlPeerError("the peer sent a ciphertext per row for another number of rows")
        self.chunks.append(chunk)
        return chunk

    def merge_rows(self) -> None:
        """Join the tree's chunks into one array once they are all in: a node's histogram is then
        one bucket-sum call per column group, not one per chunk (each call has a fixed cost)."""
        if len(self.chunks) < 2:
            return
        merged = self.chunks[0][[0] * sum(chunk.shape[0] for chunk in self.chunks)]
        offset = 0
        for chunk in self.chunks:
            merged[list(range(offset, offset + chunk.shape[0]))] = chunk
            offset += chunk.shape[0]
        self.chunks = [merged]

    def add(self, left: Any, right: Any) -> Any:
        return self.kit.evaluator().add(left, right)

    def bucket_sums(
        self, chunk: Any, codes: np.ndarray, members: list[np.ndarray], buckets: int
    ) -> list[Any]:
        """Per node (a 0/1 mask over the chunk's rows): the encrypted sum of every (column, bin)."""
        started = time.perf_counter()
        order = np.ascontiguousarray(codes, dtype=np.int8)
        maps = [np.ascontiguousarray(m, dtype=np.int8) for m in members]
        sums: list[Any] = self.kit.evaluator().batch_feature_wise_bucket_sum(
            chunk, maps, order, buckets, False
        )
        self.costs.add_s += time.perf_counter() - started
        self.costs.additions += int(sum(int(m.sum()) for m in members)) * codes.shape[1]
        return sums

    def partial_sums(self, chunk: Any, codes: np.ndarray, mask: np.ndarray, plan: DominantBins) -> list[Any]:
        """One chunk's part of a node's histogram (``mask``: the node's rows in the chunk), in
        ``plan``'s layout: the full columns' sums, then each skipped column's without its dominant bin."""
        width = plan.width
        parts = self.bucket_sums(chunk, codes[:, plan.full], [mask], width)
        for column, code in zip(plan.skipped, plan.code, strict=True):
            kept = mask & (codes[:, column] != code)
            parts += self.bucket_sums(chunk, codes[:, [column]], [kept], width)
        return parts

    def add_parts(self, left: list[Any] | None, right: list[Any]) -> list[Any]:
        return right if left is None else [self.add(a, b) for a, b in zip(left, right, strict=True)]

    def node_parts(self, codes: np.ndarray, mask: np.ndarray, plan: DominantBins) -> list[Any]:
        """:meth:`partial_sums` over all chunks of the current tree (``codes``/``mask`` cover them all)."""
        totals: list[Any] | None = None
        offset = 0
        for chunk in self.chunks:
            rows = chunk.shape[0]
            window = slice(offset, offset + rows)
            totals = self.add_parts(totals, self.partial_sums(chunk, codes[window], mask[window], plan))
            offset += rows
        assert totals is not None
        return totals

    def assemble(self, parts: list[Any], plan: DominantBins) -> Any:
        """The node's histogram, (column, bin) flat: each skipped column's dominant bin is the
        node's total (the anchor column's bins added up) minus the column's other bins."""
        started = time.perf_counter()
        width, columns = plan.width, len(plan.full) + len(plan.skipped)
        full, skipped = parts[0][:, 0], [part[:, 0] for part in parts[1:]]
        histogram = full[[0] * (columns * width)]
        histogram[_cells(plan.full, width)] = full
        anchor = int(np.searchsorted(plan.full, plan.anchor))
        evaluator = self.kit.evaluator()
        total = evaluator.sum(full[list(range(anchor * width, (anchor + 1) * width))])
        totals, others = full[[0] * len(skipped)], full[[0] * len(skipped)]
        for k, (column, code, sums) in enumerate(zip(plan.skipped, plan.code, skipped, strict=True)):
            histogram[_cells([column], width)] = sums
            totals[k] = total
            others[k] = evaluator.sum(sums[[b for b in range(width) if b != code]])
        if len(skipped):
            histogram[[int(c) * width + int(d) for c, d in zip(plan.skipped, plan.code, strict=True)]] = (
                evaluator.sub(totals, others)
            )
        self.costs.additions += (width - 1) * (1 + len(plan.skipped)) + len(plan.skipped)
        self.costs.add_s += time.perf_counter() - started
        return histogram

    @staticmethod
    def select(sums: object, positions: list[int]) -> bytes:
        """Only the non-empty bins travel (the label holder would read empty ones as zero)."""
        assert positions, "a node with rows has a non-empty bin"
        return bytes(sums[positions].serialize())  # type: ignore[index]


def _cells(columns: Any, width: int) -> list[int]:
    return [int(c) * width + b for c in columns for b in range(width)]


@dataclass(frozen=True)
class DominantBins:
    """Which bins the network sums, and which it derives.

    A column whose most frequent bin holds at least ``SKIP_FRACTION`` of the rows (a
    skewed or few-level column: "previous contacts = 0", "outcome unknown") is summed
    without that bin, whose sum is then the node's total minus the column's other bins:
    one subtraction a node instead of an addition per row in that bin. The node's total
    comes from the anchor, the least skewed column, which is always summed in full. The
    plan depends on the network's own codes only; the sums the wallet decrypts are the
    same integers either way.
    """

    width: int  # bins + 1 (missing)
    full: np.ndarray  # columns summed bin by bin, ascending (the anchor among them)
    skipped: np.ndarray  # columns whose dominant bin is derived
    code: np.ndarray  # the dominant bin of each skipped column
    anchor: int

    @classmethod
    def of(cls, codes: np.ndarray, width: int) -> DominantBins:
        columns = codes.shape[1]
        counts = np.stack(
            [np.bincount(codes[:, j].astype(np.int64), minlength=width) for j in range(columns)]
        )
        dominant = counts.argmax(axis=1)
        fraction = counts.max(axis=1) / max(1, codes.shape[0])
        anchor = int(np.argmin(fraction)) if columns else 0
        skip = (fraction >= SKIP_FRACTION) & (np.arange(columns) != anchor)
        return cls(width, np.nonzero(~skip)[0], np.nonzero(skip)[0], dominant[skip], anchor)
