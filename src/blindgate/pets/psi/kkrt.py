"""KKRT16-style PSI: a batched OPRF from OT extension, with cuckoo hashing.

Kolesnikov, Kumaresan, Rosulek, Trieu, "Efficient batched oblivious PRF with
applications to private set intersection" (CCS 2016). The receiver R cuckoo-hashes its
items into m = 1.27·n + 64 bins with three hash functions; one OPRF instance per bin
gives it F(y) for the item y in each bin. The sender S, holding the OPRF key, evaluates
F at each of its items under each of the three hash functions and sends those values;
R compares. The costs are symmetric crypto (AES) and memory traffic, vectorised in
NumPy, which is where the speed comes from.

The OPRF (KKRT section 3): S picks s ∈ {0,1}^512 and receives, by 512 base OTs
(``blindgate.pets.ot.base``, R sending), one of each of R's key pairs (k0_j, k1_j). For
bins i, R sets t_j = PRG(k0_j), u_j = t_j ⊕ PRG(k1_j) ⊕ c_j, where c_i = C(item in bin i)
is a 512-bit pseudorandom code word; S derives q_i = t_i ⊕ (C(y_i) ∧ s). Then
F(x) at bin i is H(i, q_i ⊕ (C(x) ∧ s)), which equals R's H(i, t_i) exactly when x = y_i.
Primitives, all from ``cryptography`` (OpenSSL) and ``hashlib``: AES-128-CTR is the PRG,
AES-128-ECB under a per-run key chosen by S is the pseudorandom code (four blocks of
the item's 128-bit identity: the first half of its BLAKE2b-256 key digest,
``buckets.key_digest``), and H is a Matyas–Meyer–Oseas chain of fixed-key
AES (a public key; the hash is modelled on AES as an ideal permutation) truncated to
128 bits, far above the 40 + log2(3·n_R·n_S) bits a false match would need. Only the
protocol glue and the cuckoo insertion are written here: no maintained Python library
offers OT-extension PSI.

Cuckoo hashing: 3 hash functions (AES under a fresh public seed) and 1.27n + 64 bins,
no stash. For such tables Pinkas, Schneider, Tkachenko and Yanai (Eurocrypt 2019,
"Efficient circuit-based PSI with linear communication") and PSZ (USENIX 2015/TOPS
2018) measure an insertion failure probability below 2^-40. A failed insertion here
(our insertion gives up after a bounded number of eviction rounds) is retried with a
fresh seed, twice at most; the seed is public, so a retry tells S nothing about R's items.

Threat model: semi-honest parties. What leaks: both learn the other's set size (and S
learns m, which R's size fixes anyway). R learns which of its items are in the
intersection and nothing about S's other items (their OPRF values are pseudorandom
to it). S learns nothing about R's items: every column it sees is one-time padded by a
PRG stream keyed by a base-OT key it did not choose. Fresh keys, s and seeds per run,
never written to disk. A run split into buckets (``buckets``) makes one cuckoo
table per bucket under the same base OTs, s and code key, as one KKRT table's bins share
them; PRG chunk numbers and H's bin indices run on across buckets, so none repeats.
In cardinality mode R does not compare: S programs a hint per bin from its values
(``opprf``) and the parties count through a shuffle (``kkrt_cardinality``), so that R
learns the intersection's size and not which of its items matched.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.ot.base import receive_base_ots, send_base_ots
from blindgate.pets.psi.errors import PsiError

CODE_BITS = 512
CODE_BYTES = CODE_BITS // 8
OUT_BYTES = 16
HASHES = 3
CHUNK_ROWS = 1 << 16  # bins per OT-extension frame (a multiple of 8)
ITEM_BATCH = 1 << 15  # sender items per frame of OPRF values
MAX_EVICTION_ROUNDS = 2000
CUCKOO_ATTEMPTS = 3
# Fixed public AES key of the hash H (fixed-key model: AES as a random permutation).
_HASH_KEY = b"blindgate-kkrt-h"
_HASH_IV = 0x626C696E64676174  # "blindgat": H's chaining value, beside the bin index

Tick = Callable[[int], None]


def table_size(items: int) -> int:
    """Cuckoo bins for ``items`` (1.27n + 64: the + 64 keeps tiny tables from failing)."""
    bins = int(np.ceil(1.27 * items)) + 64
    return -(-bins // 8) * 8


def _ecb(key: bytes, blocks: np.ndarray) -> np.ndarray:
    """AES-128-ECB over an (..., 2) uint64 array of blocks, same shape."""
    data = np.ascontiguousarray(blocks, dtype="<u8")
    out = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(data.tobytes())
    return np.frombuffer(out, dtype="<u8").reshape(data.shape)


def _prg(key: bytes, chunk: int, nbytes: int) -> np.ndarray:
    """``nbytes`` from AES-128-CTR under the base-OT key; each chunk has its own nonce range."""
    nonce = chunk.to_bytes(8, "big") + bytes(8)
    stream = Cipher(algorithms.AES(key[:16]), modes.CTR(nonce)).encryptor().update(bytes(nbytes))
    return np.frombuffer(stream, dtype=np.uint8)


def digests(keys: Sequence[bytes]) -> np.ndarray:
    """128-bit BLAKE2b digest of each key, as (n, 2) uint64 (the only per-item Python step)."""
    joined = b"".join(hashlib.blake2b(k, digest_size=16, person=b"bg-psi-kkrt-v1").digest() for k in keys)
    return np.frombuffer(joined, dtype="<u8").reshape(len(keys), 2)


def bin_indices(digest: np.ndarray, seed: bytes, bins: int) -> np.ndarray:
    """(n, 3) bin of each item under each hash function: AES under the public seed, mod bins."""
    out = np.empty((digest.shape[0], HASHES), dtype=np.int64)
    for h in range(HASHES):
        tweaked = digest.copy()
        tweaked[:, 1] ^= np.uint64(h + 1)
        out[:, h] = (_ecb(seed, tweaked)[:, 0] % np.uint64(bins)).astype(np.int64)
    return out


def code_words(code_key: bytes, digest: np.ndarray, which: np.ndarray | int) -> np.ndarray:
    """C(item ‖ hash index): four AES blocks of the tweaked digest, (n, 64) bytes."""
    n = digest.shape[0]
    base = digest.copy()
    base[:, 0] ^= np.asarray(which, dtype=np.uint64)
    blocks = np.repeat(base[:, None, :], 4, axis=1)
    blocks[:, :, 1] ^= np.arange(1, 5, dtype=np.uint64)[None, :]
    return _ecb(code_key, blocks.reshape(n * 4, 2)).view(np.uint8).reshape(n, CODE_BYTES)


def row_hash(bins: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """H(bin, row): MMO chain of fixed-key AES over the row's four blocks, (n, 16) bytes."""
    n = rows.shape[0]
    words = np.ascontiguousarray(rows).view("<u8").reshape(n, 4, 2)
    chain = np.empty((n, 2), dtype="<u8")
    chain[:, 0] = bins.astype("<u8")
    chain[:, 1] = _HASH_IV
    for k in range(4):
        mixed = chain ^ words[:, k, :]
        chain = _ecb(_HASH_KEY, mixed) ^ mixed
    return chain.view(np.uint8).reshape(n, OUT_BYTES)


_BIT_REVERSED = np.array([int(f"{v:08b}"[::-1], 2) for v in range(256)], dtype=np.uint8)


def _transpose_8x8(words: np.ndarray) -> np.ndarray:
    """Transpose the 8x8 bit matrix in each uint64 (byte = row, bit = column), by delta swaps."""
    x = words.copy()
    for shift, mask in ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0)):
        t = (x ^ (x >> np.uint64(shift))) & np.uint64(mask)
        x ^= t ^ (t << np.uint64(shift))
    return x


def transpose_bits(matrix: np.ndarray) -> np.ndarray:
    """Transpose an (R, C) byte matrix of bits (MSB-first, as np.packbits) into (8C, R/8).

    Each 8-row by 1-byte block becomes one uint64 whose 8x8 bits are transposed in place;
    reversing the bits of each byte before and after turns MSB-first into the LSB-first
    order the delta swaps work in. Equivalent to packbits(unpackbits(matrix).T), ~20x faster.
    """
    rows, cols = matrix.shape
    assert rows % 8 == 0 and matrix.dtype == np.uint8
    blocks = _BIT_REVERSED[matrix].reshape(rows // 8, 8, cols).transpose(0, 2, 1)
    words = np.ascontiguousarray(blocks).view("<u8").reshape(rows // 8, cols)
    flipped = _transpose_8x8(words).view(np.uint8).reshape(rows // 8, cols, 8)
    return np.ascontiguousarray(_BIT_REVERSED[flipped].transpose(1, 2, 0)).reshape(cols * 8, rows // 8)


def rows_to_columns(rows: np.ndarray) -> np.ndarray:
    """(b, 64) bit rows to (512, b/8) bit columns."""
    return transpose_bits(rows)


def columns_to_rows(columns: np.ndarray) -> np.ndarray:
    """(512, b/8) bit columns to (b, 64) bit rows."""
    return transpose_bits(columns)


def cuckoo_insert(bins: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Place every item in one of its bins, at most one per bin: (table, hash used) or None.

    Vectorised: in each round all homeless items try their current hash function's bin;
    one wins each contested bin, evicting the previous occupant, and every loser moves
    on to its next hash function.
    """
    n = bins.shape[0]
    table = np.full(size, -1, dtype=np.int64)
    choice = np.zeros(n, dtype=np.int64)
    homeless = np.arange(n, dtype=np.int64)
    for _ in range(MAX_EVICTION_ROUNDS):
        if homeless.size == 0:
            return table, choice
        wanted = bins[homeless, choice[homeless]]
        taken, first = np.unique(wanted, return_index=True)
        winners = homeless[first]
        lost = np.ones(homeless.size, dtype=bool)
        lost[first] = False
        evicted = table[taken]
        evicted = evicted[evicted >= 0]
        table[taken] = winners
        movers = np.concatenate([homeless[lost], evicted])
        choice[movers] = (choice[movers] + 1) % HASHES
        homeless = movers
    return None


class Receiver:
    """R's side of one run: 512 base OTs and the code key once, then one OPRF table per bucket.

    All buckets share the base OTs and s, exactly as all bins of one KKRT table do; what
    keeps them apart is that PRG chunk numbers and bin indices (the tweak of H) run on
    across buckets, so no chunk nonce or bin index is ever used twice in a run.
    """

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._pairs = send_base_ots(channel, CODE_BITS)
        self._code_key = channel.recv()
        if len(self._code_key) != 16:
            raise MalformedFrame("expected a 16-byte code key")
        self._chunk = 0
        self._first_bin = 0

    def bucket(self, digest: np.ndarray, peer_size: int, tick: Tick) -> tuple[np.ndarray, np.ndarray, int]:
        """(own OPRF values in item order, S's values in S's order, values per S item)."""
        table, values = self._oprf(digest, tick)
        occupied = table >= 0
        own = np.empty((digest.shape[0], OUT_BYTES), dtype=np.uint8)
        own[table[occupied]] = values[occupied]
        return own.view(f"S{OUT_BYTES}").reshape(-1), _recv_values(self._channel, peer_size), HASHES

    def bins(self, digest: np.ndarray, tick: Tick) -> np.ndarray:
        """Cardinality mode: the OPRF value of every bin, in bin order, (bins, 16) bytes.

        An empty bin's value is that of a random code word: pseudorandom, matching nothing.
        """
        return self._oprf(digest, tick)[1]

    def _oprf(self, digest: np.ndarray, tick: Tick) -> tuple[np.ndarray, np.ndarray]:
        """Cuckoo-hash the items into a fresh table and run the OPRF: (table, value of each bin)."""
        channel, size = self._channel, table_size(digest.shape[0])
        for _ in range(CUCKOO_ATTEMPTS):
            seed = os.urandom(16)
            placed = cuckoo_insert(bin_indices(digest, seed, size), size)
            if placed is not None:
                break
        else:
            raise PsiError("cuckoo hashing failed repeatedly (probability below 2^-40; please rerun)")
        table, choice = placed
        channel.send_json({"seed": seed.hex(), "bins": size})
        values = np.empty((size, OUT_BYTES), dtype=np.uint8)
        for start in range(0, size, CHUNK_ROWS):
            stop = min(size, start + CHUNK_ROWS)
            items = table[start:stop]
            t_rows = self._extend(self._codes(digest, items, choice))
            values[start:stop] = row_hash(np.arange(self._first_bin + start, self._first_bin + stop), t_rows)
            tick(int((items >= 0).sum()))
        self._first_bin += size
        return table, values

    def _codes(self, digest: np.ndarray, items: np.ndarray, choice: np.ndarray) -> np.ndarray:
        """Code words of the items in a chunk of bins; empty bins get random ones."""
        occupied = items >= 0
        codes = np.empty((items.size, CODE_BYTES), dtype=np.uint8)
        codes[occupied] = code_words(self._code_key, digest[items[occupied]], choice[items[occupied]])
        empty = int((~occupied).sum())
        codes[~occupied] = np.frombuffer(os.urandom(empty * CODE_BYTES), dtype=np.uint8).reshape(
            empty, CODE_BYTES
        )
        return codes

    def _extend(self, codes: np.ndarray) -> np.ndarray:
        """Send u = t ⊕ PRG(k1) ⊕ c for one chunk of bins; return this side's rows t."""
        code_columns = rows_to_columns(codes)
        width = codes.shape[0] // 8
        t_columns = np.empty((CODE_BITS, width), dtype=np.uint8)
        u_columns = np.empty_like(t_columns)
        for j, (key0, key1) in enumerate(self._pairs):
            t_columns[j] = _prg(key0, self._chunk, width)
            u_columns[j] = t_columns[j] ^ _prg(key1, self._chunk, width) ^ code_columns[j]
        self._chunk += 1
        self._channel.send(u_columns.tobytes())
        return columns_to_rows(t_columns)


def _recv_values(channel: Channel, peer_size: int) -> np.ndarray:
    peer = bytearray()
    for start in range(0, peer_size, ITEM_BATCH):
        count = min(ITEM_BATCH, peer_size - start)
        frame = channel.recv()
        if len(frame) != count * HASHES * OUT_BYTES:
            raise MalformedFrame("expected a frame of OPRF values")
        peer += frame
    return np.frombuffer(bytes(peer), f"S{OUT_BYTES}")


class Sender:
    """S's side of one run: base OTs (choosing s) and the code key once, then one table per bucket."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._s_bits = np.unpackbits(np.frombuffer(os.urandom(CODE_BYTES), dtype=np.uint8))
        self._chosen = receive_base_ots(channel, [int(b) for b in self._s_bits])
        self._s_mask = np.packbits(self._s_bits)
        self._code_key = os.urandom(16)
        channel.send(self._code_key)
        self._chunk = 0
        self._first_bin = 0

    def bucket(self, digest: np.ndarray, peer_size: int, tick: Tick) -> None:
        """Send the OPRF values of ``digest`` (in the order S wants R to see them)."""
        q_rows, bins = self._start_table(digest, peer_size)
        for start in range(0, digest.shape[0], ITEM_BATCH):
            stop = min(digest.shape[0], start + ITEM_BATCH)
            self._channel.send(self._values(q_rows, digest, bins, start, stop).tobytes())
            tick(stop - start)
        self._first_bin += q_rows.shape[0]

    def entries(self, digest: np.ndarray, peer_size: int, tick: Tick) -> tuple[np.ndarray, np.ndarray]:
        """Cardinality mode: (bin (3n,), OPRF value (3n, 16) bytes) of each item under each
        hash function, for ``opprf`` to program; nothing is sent but the OT extension's answer."""
        q_rows, bins = self._start_table(digest, peer_size)
        values = np.empty((digest.shape[0], HASHES, OUT_BYTES), dtype=np.uint8)
        for start in range(0, digest.shape[0], ITEM_BATCH):
            stop = min(digest.shape[0], start + ITEM_BATCH)
            values[start:stop] = self._values(q_rows, digest, bins, start, stop)
            tick(stop - start)
        self._first_bin += q_rows.shape[0]
        return bins.reshape(-1), values.reshape(-1, OUT_BYTES)

    def _start_table(self, digest: np.ndarray, peer_size: int) -> tuple[np.ndarray, np.ndarray]:
        """R's cuckoo parameters and OT extension for one table: (S's rows q, bins of S's items)."""
        size = table_size(peer_size)
        params = self._channel.recv_json()
        try:
            seed = bytes.fromhex(params["seed"])
            if len(seed) != 16 or params["bins"] != size:
                raise ValueError
        except (TypeError, KeyError, ValueError) as exc:
            raise MalformedFrame("bad cuckoo parameters from the receiver") from exc
        return self._absorb(size), bin_indices(digest, seed, size)

    def _values(
        self, q_rows: np.ndarray, digest: np.ndarray, bins: np.ndarray, start: int, stop: int
    ) -> np.ndarray:
        """F at items start..stop under each hash function: (items, 3, 16) bytes."""
        values = np.empty((stop - start, HASHES, OUT_BYTES), dtype=np.uint8)
        for h in range(HASHES):
            where = bins[start:stop, h]
            masked = q_rows[where] ^ (code_words(self._code_key, digest[start:stop], h) & self._s_mask)
            values[:, h] = row_hash(where + self._first_bin, masked)
        return values

    def _absorb(self, size: int) -> np.ndarray:
        """Receive R's OT-extension columns and return S's rows q_i = t_i ⊕ (c_i ∧ s)."""
        q_rows = np.empty((size, CODE_BYTES), dtype=np.uint8)
        for start in range(0, size, CHUNK_ROWS):
            stop = min(size, start + CHUNK_ROWS)
            width = (stop - start) // 8
            frame = self._channel.recv()
            if len(frame) != CODE_BITS * width:
                raise MalformedFrame("expected an OT-extension frame")
            u_columns = np.frombuffer(frame, dtype=np.uint8).reshape(CODE_BITS, width)
            q_columns = np.empty((CODE_BITS, width), dtype=np.uint8)
            for j, key in enumerate(self._chosen):
                q_columns[j] = _prg(key, self._chunk, width)
                if self._s_bits[j]:
                    q_columns[j] ^= u_columns[j]
            self._chunk += 1
            q_rows[start:stop] = columns_to_rows(q_columns)
        return q_rows


def item_digests(digests: np.ndarray) -> np.ndarray:
    """The 128-bit item identities of 32-byte key digests (their first half), as (n, 2) uint64."""
    head = np.ascontiguousarray(np.ascontiguousarray(digests).view(np.uint8).reshape(-1, 32)[:, :16])
    return head.view("<u8").reshape(-1, 2)


__all__ = [
    "CODE_BITS",
    "HASHES",
    "Receiver",
    "Sender",
    "cuckoo_insert",
    "digests",
    "item_digests",
    "table_size",
]
