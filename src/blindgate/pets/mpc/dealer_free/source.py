"""Beaver triples, and clear-matrix products, made by the two parties alone.

:class:`DealerFreeTripleSource` implements :class:`~blindgate.pets.mpc.correlations.TripleSource`
with no third party. Each party draws its own shares a_i, b_i; the cross terms a_0 b_1 and
a_1 b_0 of c = (a_0 + a_1)(b_0 + b_1) come from Gilboa multiplication over IKNP OT
extension (:mod:`.ole`), both directions in the same two rounds.

For vertically partitioned data it also computes M @ v where one party holds M in clear and
v is shared (:meth:`clear_matmul`): the holder computes M @ v_holder alone and only the cross
term M @ v_other needs OT, in one direction, with no triple to open afterwards. For the
logistic-regression step X_b @ w and X_b^T @ e that is half the OT traffic of a matrix triple
and no Beaver openings.

It also truncates shares exactly (:meth:`exact_truncation`, the known-MSB rule: one
correlated OT per element, one round trip), so the engine never needs SecureML's local
truncation, which fails with probability |raw| / 2^64 per element.

Threat model: semi-honest, two parties, no dealer. Each party sees the peer's OT-extension
matrices and corrections, all masked by pads it cannot compute; it learns nothing about the
peer's shares or clear matrix. Cost per element-wise triple: 2 x 64 OTs and 2 x 344 bytes of
corrections plus 2 x 64 x 16 bytes of extension matrix (about 2.7 KB), two rounds per request.
"""

from __future__ import annotations

import numpy as np

from blindgate.net import Channel
from blindgate.pets.mpc.correlations import Triple
from blindgate.pets.mpc.dealer_free.ole import BaseOts, OleSession, RowsJob, VectorJob, random_ring


def _rows_for(left: np.ndarray, right_columns: int) -> np.ndarray:
    """Rows for the products left @ right via right's bits: entry (l, s) of right meets column l."""
    return np.repeat(np.ascontiguousarray(left.T), right_columns, axis=0)


def _collect(products: np.ndarray, inner: int, right_columns: int) -> np.ndarray:
    """Shares of the products (inner * right_columns, p) summed into shares of left @ right (p, r)."""
    p = products.shape[1]
    summed = products.reshape(inner, right_columns, p).sum(axis=0, dtype=np.uint64)
    return np.ascontiguousarray(summed.T)


def _dtype_for(bits: int) -> type[np.unsignedinteger]:
    """The narrowest unsigned type with at least ``bits`` bits: shares mod 2^bits suffice."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if bits <= 8 * np.dtype(dtype).itemsize:
            return dtype
    return np.uint64


class DealerFreeTripleSource:
    """A :class:`TripleSource` for party 0 or 1, talking only to the other party over ``channel``.

    Both parties must make the same calls, with the same shapes, in the same order. The first
    call runs the one-off set-up (128 base OTs each way); :meth:`setup` runs it explicitly.
    Channel errors (peer gone, timeout, malformed frame) propagate as
    :class:`blindgate.net.ChannelError`.
    """

    def __init__(self, channel: Channel, party: int, base_ots: BaseOts | None = None) -> None:
        self.party = party
        self._ole = OleSession(channel, party, base_ots)

    @property
    def rounds(self) -> int:
        return self._ole.rounds

    def setup(self) -> None:
        self._ole.setup()

    def elementwise(self, shape: tuple[int, ...]) -> Triple:
        count = int(np.prod(shape, dtype=np.int64))
        a, b = random_ring((count,)), random_ring((count,))
        mine, theirs = self._ole.products(RowsJob(a[:, None]), VectorJob(b, 1))
        assert mine is not None and theirs is not None
        c = a * b + mine[:, 0] + theirs[:, 0]
        return Triple(a.reshape(shape), b.reshape(shape), c.reshape(shape))

    def elementwise_fanout(self, shape: tuple[int, ...], fanout: int) -> Triple:
        """Shares of a (``shape``), b (``(fanout, *shape)``) and c = a * b, a broadcast.

        For x * y_1, ..., x * y_m with the same x (a Chebyshev level, say): the engine opens
        x - a once and each y_i - b_i. Cheaper than m element-wise triples because the bits of
        a are the OT choices and each OT carries all m products: per element 2 x (64 x 16 +
        344 m) bytes instead of 2 m x (64 x 16 + 344), 2.8x less for m = 7.
        """
        if fanout < 1:
            raise ValueError("fanout must be at least 1")
        count = int(np.prod(shape, dtype=np.int64))
        a, b = random_ring((count,)), random_ring((fanout, count))
        mine, theirs = self._ole.products(RowsJob(np.ascontiguousarray(b.T)), VectorJob(a, fanout))
        assert mine is not None and theirs is not None
        c = a[None, :] * b + mine.T + theirs.T
        return Triple(a.reshape(shape), b.reshape((fanout, *shape)), c.reshape((fanout, *shape)))

    def bitwise(self, shape: tuple[int, ...]) -> Triple:
        count = int(np.prod(shape, dtype=np.int64))
        a, b, c = self._ole.and_triples(count)
        return Triple(a.reshape(shape), b.reshape(shape), c.reshape(shape))

    def bitwise_fanout(self, shape: tuple[int, ...], fanout: int) -> Triple:
        """XOR-shares of a (``shape``), b (``(fanout, *shape)``) and c = a & b, a broadcast.

        For x & y_1, ..., x & y_m (a carry chain's propagate bits against two operands, say):
        one OT per lane carries all m bits, about m times less OT traffic than m AND triples.
        """
        if fanout < 1:
            raise ValueError("fanout must be at least 1")
        count = int(np.prod(shape, dtype=np.int64))
        a, b, c = self._ole.and_fanout(count, fanout)
        return Triple(a.reshape(shape), b.reshape((fanout, *shape)), c.reshape((fanout, *shape)))

    def exact_truncation(self, share: np.ndarray, bits: int) -> np.ndarray:
        """This party's share of floor(x / 2^bits) or floor(x / 2^bits) + 1, never anything
        else, for a shared raw value x with |x| < 2^62: one correlated OT per element.

        The "known MSB" truncation of SIRNN (Rathee et al., IEEE S&P 2021) and Cheetah
        (Huang et al., USENIX Security 2022). Party 0 adds 2^62, so y = x + 2^62 lies in
        [0, 2^63): its top bit is known to be 0. Write y = y0 + y1 - w 2^64, w the wrap of the
        shares' sum over 2^64 and m_i = msb(y_i). Then w = m0 OR m1 = m0 + m1 - m0 m1:
        - m0 = m1 = 0: y0, y1 < 2^63, so y0 + y1 < 2^64, no wrap;
        - m0 = m1 = 1: y0 + y1 >= 2^64, a wrap;
        - exactly one is 1: y0 + y1 >= 2^63 as an integer, but its residue y is < 2^63,
          so the sum must have passed 2^64: a wrap.
        m0 m1 is the product of two private bits: one correlated OT (``OleSession.bit_products``),
        batched over all elements, one round trip. With y_i = h_i 2^bits + l_i (l_i < 2^bits),

            y = (h0 + h1) 2^bits + (l0 + l1) - w 2^64,  so
            floor(y / 2^bits) = h0 + h1 + c - w 2^(64 - bits),  c = [l0 + l1 >= 2^bits].

        Party 0 keeps h0 - w0 2^(64 - bits), party 1 rounds up, ceil(y1 / 2^bits) =
        h1 + [l1 > 0], and keeps that minus w1 2^(64 - bits) (w_i its share of w; only w mod
        2^bits matters once multiplied by 2^(64 - bits), so the OT messages carry just that).
        Without the w terms this is SecureML's local rule; they remove its failure. The sum
        is floor(y / 2^bits) + [l1 > 0] - c, and a carry needs l1 > 0, so the error is 0 or
        +1: +1 exactly when l0 < y mod 2^bits, i.e. with probability frac(x / 2^bits) for a
        uniform share (unbiased, as the dealer's pair), and never when 2^bits divides x.
        Party 0 finally subtracts 2^(62 - bits), undoing the shift. Outside |x| < 2^62 the
        result is wrong: the range, as for every fixed-point value, is the caller's.
        Cost: 16 bytes of OT-extension matrix (party 1 to 0) and one correction of
        ceil(bits / 8) bytes rounded up to 1, 2, 4 or 8 (party 0 to 1) per element.
        """
        if not 1 <= bits <= 62:
            raise ValueError(f"truncation drops 1 to 62 bits, not {bits}")
        if share.dtype != np.uint64:
            raise ValueError("shares must be uint64")
        flat = share.reshape(-1)
        shifted = flat + np.uint64(1 << 62) if self.party == 0 else flat
        msb = (shifted >> np.uint64(63)).astype(np.bool_)
        both = self._ole.bit_products(msb, _dtype_for(bits)).astype(np.uint64)
        wrap = msb.astype(np.uint64) - both  # this party's share of m0 + m1 - m0 m1
        result = (shifted >> np.uint64(bits)) - (wrap << np.uint64(64 - bits))
        if self.party == 0:
            result -= np.uint64(1 << (62 - bits))
        else:  # rounds up: ceil(y1 / 2^bits)
            result += (shifted & np.uint64((1 << bits) - 1) != 0).astype(np.uint64)
        return result.reshape(share.shape)

    def matmul(self, left: tuple[int, int], right: tuple[int, int]) -> Triple:
        (p, q), (q2, r) = left, right
        if q != q2:
            raise ValueError(f"cannot multiply {left} by {right}")
        a, b = random_ring(left), random_ring(right)
        mine, theirs = self._ole.products(RowsJob(_rows_for(a, r)), VectorJob(b.reshape(-1), p))
        assert mine is not None and theirs is not None
        c = a @ b + _collect(mine, q, r) + _collect(theirs, q, r)
        return Triple(a, b, c)

    def clear_matmul(
        self, holder: int, matrix: np.ndarray | None, shape: tuple[int, int], share: np.ndarray
    ) -> np.ndarray:
        """This party's share of M @ v, M (``shape``) held in clear by party ``holder``, v shared.

        ``matrix`` is M (uint64, fixed-point encoded) at the holder and None at the other
        party; ``share`` is this party's share of v, shape (shape[1],) or (shape[1], k). The
        result has shape (shape[0],) or (shape[0], k) like ``M @ v``. One direction of OT:
        64 x v.size extension OTs and 344 x M.size x k bytes of corrections.
        """
        p, q = shape
        if holder not in (0, 1):
            raise ValueError("holder must be 0 or 1")
        if share.dtype != np.uint64 or share.shape[0] != q or share.ndim not in (1, 2):
            raise ValueError(f"the shared operand must be uint64 with {q} rows")
        columns = share.reshape(q, -1)
        k = columns.shape[1]
        if self.party == holder:
            if matrix is None or matrix.shape != shape or matrix.dtype != np.uint64:
                raise ValueError(f"the holder must pass its uint64 matrix of shape {shape}")
            mine, _ = self._ole.products(RowsJob(_rows_for(matrix, k)), None)
            assert mine is not None
            result = matrix @ columns + _collect(mine, q, k)
        else:
            if matrix is not None:
                raise ValueError("only the holder passes the matrix")
            _, theirs = self._ole.products(None, VectorJob(columns.reshape(-1), p))
            assert theirs is not None
            result = _collect(theirs, q, k)
        return result.reshape((p,) if share.ndim == 1 else (p, k))

    def clear_matmul_pair(
        self,
        matrix: np.ndarray,
        shapes: tuple[tuple[int, int], tuple[int, int]],
        shares: tuple[np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Shares of M_0 @ v_0 and M_1 @ v_1, where party h holds M_h (``shapes[h]``) in clear.

        Both :meth:`clear_matmul` calls of a vertically partitioned product (each party's
        feature block times its part of the weights, say) in the same two rounds, both OT
        directions at once, so both parties compute at the same time instead of taking
        turns. ``matrix`` is this party's M; ``shares`` this party's shares of (v_0, v_1).
        """
        mine, theirs = shapes[self.party], shapes[1 - self.party]
        for h, (shape, share) in enumerate(zip(shapes, shares, strict=True)):
            if share.dtype != np.uint64 or share.shape[0] != shape[1] or share.ndim not in (1, 2):
                raise ValueError(f"the operand of party {h}'s matrix must be uint64 with {shape[1]} rows")
        if matrix.shape != mine or matrix.dtype != np.uint64:
            raise ValueError(f"this party's matrix must be uint64 of shape {mine}")
        own, other = shares[self.party].reshape(mine[1], -1), shares[1 - self.party].reshape(theirs[1], -1)
        row_share, vector_share = self._ole.products(
            RowsJob(_rows_for(matrix, own.shape[1])), VectorJob(other.reshape(-1), theirs[0])
        )
        assert row_share is not None and vector_share is not None
        results = {
            self.party: matrix @ own + _collect(row_share, mine[1], own.shape[1]),
            1 - self.party: _collect(vector_share, theirs[1], other.shape[1]),
        }
        shaped = [
            results[h].reshape((shapes[h][0],) if shares[h].ndim == 1 else (shapes[h][0], -1)) for h in (0, 1)
        ]
        return shaped[0], shaped[1]
