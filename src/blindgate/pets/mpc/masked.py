"""Products of each party's clear column block with shared vectors, each block masked once.

For vertically partitioned data each party holds its block X_h of the feature matrix in
clear. SecureML's observation: the Beaver mask of X can be reused across every product, so
X - A travels once, not once per mini-batch and per pass. Here, with a dealer:

- set-up: the dealer gives holder h the key of a uniform mask A_h (the dealer keeps only the
  key); the holder sends E_h = X_h - A_h to the other party once (uniform: A_h is unknown to
  the receiver);
- per product X_h[rows] @ v (or X_h[rows]^T @ v) with v shared: the non-holder draws a fresh
  operand mask B from its dealer seed and sends F = v_nonholder - B (uniform); the dealer
  deals shares of C = A_h[rows] @ B. Then

      holder:     X_h[rows] @ (v_holder + F) + C_holder
      non-holder: E_h[rows] @ B + C_nonholder

  sum to X_h[rows] @ v. Both blocks' products go in one round, each party sending the F of
  the product it does not hold.

What leaks: E_h once and each F, all uniform; the dealer sees which rows are multiplied.
Results are raw (2f fractional bits): the caller truncates.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from blindgate.pets.mpc.correlations import MaskedProduct, MaskingSource
from blindgate.pets.mpc.prg import expand_at
from blindgate.pets.mpc.runtime import Party

CHUNK_WORDS = 1 << 22  # X - A travels in frames of about 32 MB


class MaskedBlocks:
    """This party's side: its own encoded block in clear and the peer's masked block."""

    def __init__(self, party: Party, own: np.ndarray, widths: tuple[int, int]) -> None:
        """``own``: this party's block, already encoded (uint64, rows x widths[party])."""
        assert own.dtype == np.uint64 and own.shape[1] == widths[party.party]
        self.party = party
        self.own = own
        self.widths = widths
        self.source = cast(MaskingSource, party.triples)
        rows, me = own.shape[0], party.party
        keys = [self.source.mask(holder, (rows, widths[holder])) for holder in (0, 1)]
        key = keys[me]
        assert key is not None, "the source gives each holder the key of its own mask"
        self.theirs = _exchange_masked(party, own, key, widths[1 - me])

    def pair(
        self, start: int, stop: int, transpose: bool, vectors: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Raw shares of X_0[rows] @ v_0 and X_1[rows] @ v_1 (rows = start..stop), or of
        X_h[rows]^T @ v_h when ``transpose``; ``vectors`` are this party's shares of v_0, v_1."""
        me, other = self.party.party, 1 - self.party.party
        columns = vectors[0].shape[1]
        products = [MaskedProduct(h, start, stop, transpose, columns) for h in (0, 1)]
        shares = self.source.masked(products)
        mine = vectors[other] - shares[other].b  # F for the product the peer holds
        theirs = self.party.exchange(mine, vectors[me].shape)  # the peer's F for ours
        block = self.own[start:stop]
        masked = self.theirs[start:stop]
        held = (block.T if transpose else block) @ (vectors[me] + theirs) + shares[me].c
        helped = (masked.T if transpose else masked) @ shares[other].b + shares[other].c
        return (held, helped) if me == 0 else (helped, held)


def _exchange_masked(party: Party, own: np.ndarray, key: bytes, their_width: int) -> np.ndarray:
    """Send X - A (A from ``key``) and receive the peer's, in chunks of rows."""
    rows, width = own.shape
    theirs = np.empty((rows, their_width), np.uint64)
    step = max(1, CHUNK_WORDS // max(width, their_width, 1))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        mask = expand_at(key, start * width, (stop - start) * width).reshape(stop - start, width)
        theirs[start:stop] = party.exchange(own[start:stop] - mask, (stop - start, their_width))
    return theirs
