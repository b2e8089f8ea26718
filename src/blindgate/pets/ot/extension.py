"""IKNP correlated oblivious-transfer extension (semi-honest), vectorised with NumPy.

128 base OTs, run once, turn into any number of 128-bit correlated OTs (Ishai, Kilian,
Nissim, Petrank, CRYPTO 2003): the extension *receiver* holds choice bits r_j and learns
t_j; the extension *sender* holds a secret 128-bit Delta and learns q_j = t_j XOR r_j*Delta.
Hashing q_j and q_j XOR Delta gives the sender two pads of which the receiver knows exactly
the one it chose; :class:`PadHash` stretches each to as many bytes as a message needs.

Why written here: no maintained Python library offers OT extension. Only the protocol glue
is ours; the primitives are AES from ``cryptography`` (OpenSSL): AES-CTR as the PRG that
stretches each base-OT key, and fixed-key AES as the tweakable correlation-robust hash
H(x, i) = pi(pi(x) XOR i) XOR pi(x) of Guo, Katz, Wang, Yu (IEEE S&P 2020), the hash that
libOTe and EMP use. The 128 x n bit-matrix transpose is done 8x8 bits at a time on uint64
words (a classic delta-swap shuffle), fast enough that AES and the network dominate.

What leaks (semi-honest parties): the sender learns nothing about the choice bits (each
column it sees is masked by a PRG stream it cannot predict); the receiver learns only the
pads it chose, the others being hashes of points offset by the unknown Delta. Two runs must
never share base-OT keys and call counters: each object keeps its own counter.
"""

from __future__ import annotations

import os

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KAPPA = 128  # base OTs, and the bit length of Delta and of every q_j / t_j
ROW_BYTES = KAPPA // 8
_TRANSPOSE_STEP = 256  # 64-OT groups per slice of the transpose
# The fixed AES key of the hash. Public by design: security rests on AES behaving as a random
# permutation under a known key (the fixed-key model), not on this key being secret.
_FIXED_KEY = bytes.fromhex("626c696e64676174652d6f742d686173")  # "blindgate-ot-has"


def _prg_rows(keys: list[bytes], counter: int, width: int) -> np.ndarray:
    """Row i: ``width`` bytes of AES-128-CTR keystream under keys[i], from block counter<<64 on.

    Written straight into one array: no per-row allocations or copies.
    """
    assert all(len(key) >= 16 for key in keys) and 0 <= counter < 2**64
    nonce = counter.to_bytes(8, "big") + bytes(8)
    zeros = np.zeros(width, dtype=np.uint8)
    rows = np.empty((len(keys), width), dtype=np.uint8)
    for i, key in enumerate(keys):
        encryptor = Cipher(algorithms.AES(key[:16]), modes.CTR(nonce)).encryptor()
        written = encryptor.update_into(zeros.data, rows[i].data)  # CTR is a stream: no spare block
        assert written == width
    return rows


def _flip_anti_diagonal(x: np.ndarray) -> np.ndarray:
    """Flip the 8x8 bit matrix in each uint64 about its anti-diagonal (chessprogramming.org's
    flipDiagA8H1). With row k in byte k and column c at bit 7-c (packbits order) that is a
    plain transpose."""
    u = np.uint64
    t = x ^ (x << u(36))
    x = x ^ (u(0xF0F0F0F00F0F0F0F) & (t ^ (x >> u(36))))
    t = u(0xCCCC0000CCCC0000) & (x ^ (x << u(18)))
    x = x ^ t ^ (t >> u(18))
    t = u(0xAA00AA00AA00AA00) & (x ^ (x << u(9)))
    return x ^ t ^ (t >> u(9))


def transpose_bits(columns: np.ndarray) -> np.ndarray:
    """A (128, n/8) uint8 bit matrix, bit (i, j) MSB-first in row i, as (n, 16) rows.

    Bit order follows ``np.packbits``: the result's row j is ``packbits(column j)``. The
    width must be a multiple of 8 bytes (callers pad n to a multiple of 128).
    """
    kappa, width = columns.shape
    assert kappa == KAPPA and columns.dtype == np.uint8 and width % 8 == 0
    # Transpose 8-byte words first (cheap), so the byte shuffle below stays within 1 KiB blocks.
    words = np.ascontiguousarray(columns.view("<u8").T)  # words[G, i]: row i, byte columns 8G..8G+7
    rows = np.empty((width * 8, ROW_BYTES), dtype=np.uint8)
    groups = width // 8
    for start in range(0, groups, _TRANSPOSE_STEP):  # in slices that stay in cache
        stop = min(start + _TRANSPOSE_STEP, groups)
        count = stop - start
        # bytes [G, h, a, b] -> [G, b, h, a]: one 8x8 bit block (rows 8h+a, byte column 8G+b) per uint64
        as_bytes = words[start:stop].view(np.uint8).reshape(count, KAPPA // 8, 8, 8)
        blocks = np.ascontiguousarray(as_bytes.transpose(0, 3, 1, 2))
        flipped = _flip_anti_diagonal(blocks.view("<u8").reshape(count * 8, KAPPA // 8))
        rows[start * 64 : stop * 64] = (
            flipped.view(np.uint8).reshape(count * 8, KAPPA // 8, 8).transpose(0, 2, 1).reshape(-1, ROW_BYTES)
        )
    return rows


class PadHash:
    """Fixed-key AES as a tweakable correlation-robust hash, stretched to long pads."""

    def __init__(self) -> None:
        self._cipher = Cipher(algorithms.AES(_FIXED_KEY), modes.ECB())

    def _permute(self, blocks: np.ndarray) -> np.ndarray:
        source = np.ascontiguousarray(blocks).view(np.uint8).reshape(-1)
        out = np.empty(source.size + ROW_BYTES, dtype=np.uint8)  # update_into wants a block spare
        written = self._cipher.encryptor().update_into(source.data, out.data)
        assert written == source.size
        return out[: source.size].view("<u8").reshape(blocks.shape)

    def pads(self, rows: np.ndarray, first_tweak: int, nbytes: int) -> np.ndarray:
        """``nbytes`` of H(row_j, (first_tweak + j, block)) for each (n, 16)-byte row: (n, nbytes)."""
        n = rows.shape[0]
        assert rows.shape == (n, ROW_BYTES) and first_tweak >= 0 and first_tweak + n < 2**64
        nblocks = -(-nbytes // ROW_BYTES)
        once = self._permute(np.ascontiguousarray(rows).view("<u8").reshape(n, 2))
        tweaked = np.empty((n, nblocks, 2), dtype="<u8")  # pi(x) XOR (first_tweak + j, block)
        np.bitwise_xor(
            once[:, None, 0],
            np.arange(first_tweak, first_tweak + n, dtype="<u8")[:, None],
            out=tweaked[:, :, 0],
        )
        np.bitwise_xor(once[:, None, 1], np.arange(nblocks, dtype="<u8")[None, :], out=tweaked[:, :, 1])
        hashed = self._permute(tweaked)
        hashed ^= once[:, None, :]
        return hashed.view(np.uint8).reshape(n, nblocks * ROW_BYTES)[:, :nbytes]


def _padded(n: int) -> int:
    return -(-n // KAPPA) * KAPPA


class ExtensionReceiver:
    """The choosing side. It was the *sender* of the 128 base OTs: ``base_pairs`` are its keys."""

    def __init__(self, base_pairs: list[tuple[bytes, bytes]]) -> None:
        assert len(base_pairs) == KAPPA and all(len(k0) >= 16 and len(k1) >= 16 for k0, k1 in base_pairs)
        self._pairs = base_pairs
        self._calls = 0

    def choose(self, choices: np.ndarray) -> tuple[np.ndarray, memoryview]:
        """For choice bits (bool, n), this side's rows t (n, 16) and the message U for the sender."""
        n = choices.shape[0]
        assert choices.ndim == 1 and choices.dtype == np.bool_
        packed = np.packbits(np.concatenate([choices, np.zeros(_padded(n) - n, dtype=np.bool_)]))
        t_columns = _prg_rows([k0 for k0, _ in self._pairs], self._calls, packed.size)
        u_columns = _prg_rows([k1 for _, k1 in self._pairs], self._calls, packed.size)
        u_columns ^= t_columns
        u_columns ^= packed[None, :]
        self._calls += 1
        return transpose_bits(t_columns)[:n], u_columns.reshape(-1).data


class ExtensionSender:
    """The side that knows Delta. It was the *receiver* of the 128 base OTs, choosing Delta's bits."""

    def __init__(self, delta_bits: np.ndarray, chosen_keys: list[bytes]) -> None:
        assert delta_bits.shape == (KAPPA,) and delta_bits.dtype == np.bool_
        assert len(chosen_keys) == KAPPA and all(len(k) >= 16 for k in chosen_keys)
        self.delta = np.packbits(delta_bits)  # row layout matches transpose_bits
        self._delta_bits = delta_bits
        self._keys = chosen_keys
        self._calls = 0

    @staticmethod
    def random_delta() -> np.ndarray:
        return np.unpackbits(np.frombuffer(os.urandom(ROW_BYTES), dtype=np.uint8)).astype(np.bool_)

    def absorb(self, message: bytes | memoryview, n: int) -> np.ndarray:
        """Given the receiver's message U for ``n`` OTs, this side's rows q (n, 16)."""
        width = _padded(n) // 8
        if memoryview(message).nbytes != KAPPA * width:
            raise ValueError(
                f"OT extension message of {memoryview(message).nbytes} bytes, expected {KAPPA * width}"
            )
        u_columns = np.frombuffer(message, dtype=np.uint8).reshape(KAPPA, width)
        q_columns = _prg_rows(self._keys, self._calls, width)
        q_columns[self._delta_bits] ^= u_columns[self._delta_bits]
        self._calls += 1
        return transpose_bits(q_columns)[:n]


__all__ = ["KAPPA", "ROW_BYTES", "ExtensionReceiver", "ExtensionSender", "PadHash", "transpose_bits"]
