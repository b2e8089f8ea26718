"""The contract between the MPC engine and its sources of correlated randomness.

A Beaver triple is (a, b, c) with c = a * b (element-wise) or c = a @ b (matrix), all
additively shared between parties 0 and 1 over Z_2^64 (NumPy uint64, which wraps).
The engine asks a :class:`TripleSource` for triples of given shapes; the two parties
must ask for the same shapes in the same order. Each source states its own trust
assumption: a dealer (a third party that sees no data), or the two parties alone.

Additions to this protocol must be additive (new methods), so every source keeps working.

``bitwise(shape)`` was added for comparisons (ReLU, clipping in the sigmoid): a triple
over GF(2)^64, i.e. XOR-shared uint64 words a, b, c with c = a & b, each of the 64 bit
lanes an independent AND triple. Every source implements it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


class Triple:
    """This party's shares of a, b and c, each a uint64 array.

    ``c`` may be given as a function that fetches it: the dealer's party 1 asks for its c
    when it draws a and b, and only waits for the answer when the engine reads ``c``, after
    the opening with the peer, so the dealer's round trip overlaps the peer's.
    """

    __slots__ = ("_c", "a", "b")

    def __init__(self, a: np.ndarray, b: np.ndarray, c: np.ndarray | Callable[[], np.ndarray]) -> None:
        self.a, self.b, self._c = a, b, c

    @property
    def c(self) -> np.ndarray:
        if callable(self._c):
            self._c = self._c()
        return self._c


class TruncationPair:
    """This party's shares of a dealer-made truncation pair (see ``tensor.truncate_with_pair``).

    r is uniform over Z_2^64; ``top`` shares its top bit (0 or 1, as a ring element) and
    ``low`` shares (r mod 2^63) >> bits. ``top_and_low`` is both stacked (2, *r.shape), or
    a function that fetches them (party 1 reads its corrections after the opening).
    """

    __slots__ = ("_rest", "r")

    def __init__(self, r: np.ndarray, top_and_low: np.ndarray | Callable[[], np.ndarray]) -> None:
        self.r, self._rest = r, top_and_low

    def _both(self) -> np.ndarray:
        if callable(self._rest):
            self._rest = self._rest()
        return self._rest

    @property
    def top(self) -> np.ndarray:
        return self._both()[0]

    @property
    def low(self) -> np.ndarray:
        return self._both()[1]


@dataclass(frozen=True)
class MaskedProduct:
    """One product of the holder's clear matrix block with a shared operand, X masked once.

    X is the holder's whole clear matrix (registered once with ``mask``); the product is
    X[start:stop] @ v, or X[start:stop]^T @ v when ``transpose``, v having ``columns`` columns.
    """

    holder: int
    start: int
    stop: int
    transpose: bool
    columns: int = 1


class MaskedShares:
    """This party's side of one masked product: the operand mask B (the non-holder's only;
    None at the holder) and its share of C = A[start:stop] @ B (or A[...]^T @ B), fetched
    lazily like ``Triple.c``."""

    __slots__ = ("_c", "b")

    def __init__(self, b: np.ndarray | None, c: np.ndarray | Callable[[], np.ndarray]) -> None:
        self.b, self._c = b, c

    @property
    def c(self) -> np.ndarray:
        if callable(self._c):
            self._c = self._c()
        return self._c


class TripleSource(Protocol):
    """Hands this party its shares of fresh triples; never the same triple twice."""

    party: int  # 0 or 1

    def elementwise(self, shape: tuple[int, ...]) -> Triple:
        """Shares of a, b of ``shape`` and c = a * b mod 2^64."""
        ...

    def matmul(self, left: tuple[int, int], right: tuple[int, int]) -> Triple:
        """Shares of a (``left``), b (``right``) and c = a @ b mod 2^64."""
        ...

    def bitwise(self, shape: tuple[int, ...]) -> Triple:
        """XOR-shares of a, b of ``shape`` and c = a & b (64 independent bit lanes per word)."""
        ...


class TruncatingSource(TripleSource, Protocol):
    """Optional extension (the dealer has it): pairs for a truncation that cannot fail.

    Check with ``hasattr(source, "truncation")``. A source with neither this nor
    ``exact_truncation`` gets SecureML's local truncation, which fails with a small
    probability (docs/mpc.md); both sources of this package have one of the two.
    """

    def truncation(self, shape: tuple[int, ...], bits: int) -> TruncationPair:
        """Shares of r (``shape``), of its top bit and of (r mod 2^63) >> ``bits``."""
        ...


class ExactTruncatingSource(TripleSource, Protocol):
    """Optional extension (the dealer-free source has it): a truncation that cannot fail,
    computed with the peer on the share itself rather than from a dealt pair.

    Check with ``hasattr(source, "exact_truncation")``; the engine prefers ``truncation``
    where a source has both. Same guarantee as the dealer's pair: for a raw value x with
    |x| < 2^62 the result is floor(x / 2^bits) or floor(x / 2^bits) + 1, never anything else.
    """

    def exact_truncation(self, share: np.ndarray, bits: int) -> np.ndarray:
        """This party's share of x / 2^``bits`` (rounded to a neighbour), from its share of x."""
        ...


class MaskingSource(TripleSource, Protocol):
    """Optional extension (the dealer has it): products with clear blocks masked once
    (``pets.mpc.masked``). Check with ``hasattr(source, "masked")``."""

    def mask(self, holder: int, shape: tuple[int, int]) -> bytes | None:
        """Register the holder's clear matrix; the holder gets the key of its mask A."""
        ...

    def masked(self, products: Sequence[MaskedProduct]) -> list[MaskedShares]:
        """The operand masks and shares of C for these products, in order."""
        ...


class ClearMatmulSource(TripleSource, Protocol):
    """Optional extension (dealer-free source has it): one party's clear matrix times a shared operand.

    For vertically partitioned data, X_b @ w and X_b^T @ e where the holder knows its block of
    X in clear: the holder computes M @ v_holder alone and only M @ v_other costs OT, in one
    direction, with no triple to open. Check with ``hasattr(source, "clear_matmul")``.
    """

    def clear_matmul(
        self, holder: int, matrix: np.ndarray | None, shape: tuple[int, int], share: np.ndarray
    ) -> np.ndarray:
        """This party's share of M @ v: M (``shape``, uint64) at party ``holder`` (None at the
        other), ``share`` this party's share of v, shape (shape[1],) or (shape[1], k)."""
        ...

    def clear_matmul_pair(
        self,
        matrix: np.ndarray,
        shapes: tuple[tuple[int, int], tuple[int, int]],
        shares: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shares of M_0 @ v_0 and M_1 @ v_1 (party h holds M_h in clear) in one go: both
        directions at once, so it costs the time of one ``clear_matmul``, not two.
        ``matrix`` is this party's M, ``shares`` this party's shares of (v_0, v_1)."""
        ...

    def elementwise_fanout(self, shape: tuple[int, ...], fanout: int) -> Triple:
        """Shares of a (``shape``), b (``(fanout, *shape)``) and c = a * b with a broadcast:
        x * y_1..y_m with one x costs one opening of x - a and, dealer-free, about m/2.8 times
        less OT traffic than m element-wise triples (m = 7)."""
        ...

    def bitwise_fanout(self, shape: tuple[int, ...], fanout: int) -> Triple:
        """XOR-shares of a (``shape``), b (``(fanout, *shape)``) and c = a & b with a broadcast:
        x & y_1..y_m with one x (Kogge-Stone's propagate bits against two operands). Dealer-free,
        one OT per lane serves all m: about m times less OT traffic than m AND triples."""
        ...
