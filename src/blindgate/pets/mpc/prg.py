"""A pseudo-random generator of ring elements: AES-256 in counter mode over a short seed.

Both ends of a seed expand the same stream, so correlated randomness can travel as a
32-byte seed instead of arrays. AES comes from pyca/cryptography; nothing is hand-made.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED_BYTES = 32


def new_seed() -> bytes:
    return os.urandom(SEED_BYTES)


class Prg:
    """A stream of uniform uint64 arrays; two Prg objects with one seed yield the same stream."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed is {SEED_BYTES} bytes")
        self._stream = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()

    def uint64(self, shape: tuple[int, ...]) -> np.ndarray:
        return _keystream(self._stream, int(np.prod(shape, dtype=np.int64))).reshape(shape)

    def key(self) -> bytes:
        """A fresh 32-byte key drawn from this stream (both holders of the seed draw the same)."""
        return self.uint64((SEED_BYTES // 8,)).tobytes()


def expand_at(key: bytes, start: int, count: int) -> np.ndarray:
    """Words ``start`` .. ``start + count`` of the AES-256-CTR stream of ``key``, read directly.

    Random access, so a dealer can re-derive any rows of a mask it made once (the counter
    is the 16-byte block index, two words per block) without keeping the mask in memory.
    """
    if len(key) != SEED_BYTES:
        raise ValueError(f"a PRG key is {SEED_BYTES} bytes")
    block, skip = divmod(start, 2)
    cipher = Cipher(algorithms.AES(key), modes.CTR(block.to_bytes(16, "big"))).encryptor()
    return _keystream(cipher, count + skip)[skip:]


_CHUNK_WORDS = 1 << 20
_ZEROS = bytes(8 * _CHUNK_WORDS)  # the plaintext: CTR keystream = encryption of zeros


def _keystream(cipher: Any, count: int) -> np.ndarray:
    """``count`` words of keystream written straight into a new array (no copies: this is
    most of a dealer's and a party's time per triple)."""
    out = np.empty(count + 2, np.uint64)  # update_into wants one block of slack
    bytes_out = out.view(np.uint8)
    for start in range(0, count, _CHUNK_WORDS):
        size = min(_CHUNK_WORDS, count - start)
        cipher.update_into(memoryview(_ZEROS)[: 8 * size], bytes_out[8 * start :])
    return out[:count]
