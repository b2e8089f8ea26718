"""A secret-shared tensor over Z_2^64 that reads like the array it mirrors.

Each party holds one additive share (uint64) of a fixed-point value. Addition is local;
``*`` and ``@`` use one Beaver triple and one round; products, public ones included, end
with a truncation (one round, see below); comparisons convert to XOR shares and run a
Kogge-Stone carry chain over the 64 bit lanes of each word (7 rounds), then back to
arithmetic (1 round).

What leaks: an opening reveals x - a for a fresh uniform triple share a, which is
uniform, so a party learns nothing but the shapes. Only ``reveal`` discloses a value.
Truncation: with the dealer, a truncation pair (``truncate_with_pair``); dealer-free, the
source's ``exact_truncation`` (one correlated OT per element, the "known MSB" rule). Both
one round, off by at most one unit in the last place, never more, for |raw| < 2^62.
SecureML's local rule (``fixed_point.truncate_share``) is left for a source with neither:
no round, but off by about 2^(64 - 2f) with probability |raw| / 2^64 (see docs/mpc.md).

Approximations and their stated bounds (checked by tests, over fixed-point error):
- ``exp``: (1 + x/2^n)^(2^n), n = 8, for x in [-8, 2]: |error| <= 0.16 e^x + 1e-3 (the limit
  formula is 12% low at x = -8, fixed point adds 2^8 ulp of relative error).
- ``reciprocal``: Newton-Raphson, 12 steps from 1/hi, for x in [lo, hi] with hi/lo <= 256 and
  hi <= 100 at 16 fractional bits: relative error <= 2e-3 (fixed point: one ulp of 1/hi).
- ``sigmoid`` (``method="clipped"``, the default): 0.5 + a Chebyshev series of odd degree 15
  in clip(x/8, -1, 1): absolute error <= 1.3e-3 (approximation) + 1e-3 (fixed point), for
  every real x. The clip is a comparison: most of the sigmoid's cost, dealer-free.
- ``sigmoid`` (``method="polynomial"``): 0.5 + a Chebyshev series of odd degree 9 in x/16,
  no comparison (8 products, 4 rounds): absolute error <= 0.08 + 1e-3 for x in [-16, 16].
  Outside that range it carries no bound, but its range is handled by construction: the
  degree is chosen so that the polynomial keeps rising past 16 (and falling past -16), so
  a logit beyond the range gives p > 1 (or p < 0), and the SGD gradient (p - y) pushes it
  back rather than away, as with the true sigmoid. Coarser, so training with it is its own
  algorithm: its plaintext reference is ``sigmoid_reference(x, "polynomial")``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.polynomial import chebyshev

from blindgate.pets.mpc.correlations import Triple, TruncationPair
from blindgate.pets.mpc.fixed_point import truncate_share
from blindgate.pets.mpc.runtime import Party

SIGMOID_CLIP = 8.0
SIGMOID_DEGREE = 15
SIGMOID_POLY_RANGE = 16.0  # the polynomial method's stated input range [-16, 16]
SIGMOID_POLY_DEGREE = 9
SIGMOID_METHODS = ("clipped", "polynomial")
# x / range is a truncation by these bits (both ranges are powers of two)
SIGMOID_SCALE_BITS = {"clipped": 3, "polynomial": 4}
assert 2.0 ** SIGMOID_SCALE_BITS["clipped"] == SIGMOID_CLIP
assert 2.0 ** SIGMOID_SCALE_BITS["polynomial"] == SIGMOID_POLY_RANGE


def _sigmoid_coefficients(scale: float, degree: int) -> np.ndarray:
    """Odd Chebyshev series of sigmoid(scale * t) - 1/2 on t in [-1, 1]."""
    nodes = np.cos(np.linspace(0.0, np.pi, 4001))
    target = 1.0 / (1.0 + np.exp(-scale * nodes)) - 0.5
    coefficients: np.ndarray = chebyshev.chebfit(nodes, target, degree)
    coefficients[0::2] = 0.0  # the target is odd
    return coefficients


SIGMOID_COEFFICIENTS = _sigmoid_coefficients(SIGMOID_CLIP, SIGMOID_DEGREE)
SIGMOID_POLY_COEFFICIENTS = _sigmoid_coefficients(SIGMOID_POLY_RANGE, SIGMOID_POLY_DEGREE)


def sigmoid_reference(x: np.ndarray, method: str = "clipped") -> np.ndarray:
    """The same approximation in float64, for plaintext runs of the same algorithm."""
    values = np.asarray(x, dtype=np.float64)
    if method == "polynomial":
        polynomial: np.ndarray = 0.5 + chebyshev.chebval(
            values / SIGMOID_POLY_RANGE, SIGMOID_POLY_COEFFICIENTS
        )
        return polynomial
    assert method == "clipped", f"unknown sigmoid method {method!r}"
    t = np.clip(values / SIGMOID_CLIP, -1.0, 1.0)
    result: np.ndarray = 0.5 + chebyshev.chebval(t, SIGMOID_COEFFICIENTS)
    return result


class SharedTensor:
    """This party's share of a fixed-point tensor."""

    __array_priority__ = 1000  # so ``ndarray @ SharedTensor`` asks us

    def __init__(self, share: np.ndarray, party: Party) -> None:
        assert share.dtype == np.uint64
        self.share = share
        self.party = party

    # construction and disclosure ------------------------------------------------------

    @classmethod
    def from_owner(
        cls, party: Party, owner: int, values: np.ndarray | None, shape: tuple[int, ...], what: str = "input"
    ) -> SharedTensor:
        """Share ``values`` held by ``owner``; the other party passes None and the shape.

        Zero communication: both draw the same mask r from the common PRG; the owner
        keeps x - r, the other r. The other party never sees x - r.
        """
        mask = party.shared_prg.uint64(shape)
        if party.party != owner:
            return cls(mask, party)
        assert values is not None and values.shape == shape
        return cls(party.fixed.encode(values, what) - mask, party)

    @classmethod
    def public(cls, party: Party, value: float | np.ndarray, shape: tuple[int, ...]) -> SharedTensor:
        """A public constant as a sharing: party 0 holds it, party 1 holds zero."""
        encoded = np.broadcast_to(party.fixed.encode(value, "public constant"), shape).copy()
        return cls(encoded if party.party == 0 else np.zeros(shape, np.uint64), party)

    def reveal(self, to: int | None = None, bits: int | None = None) -> np.ndarray | None:
        """Open to both parties (``to=None``) or to one; the other gets None.

        ``bits``: the fractional bits of the shares, when not ours (2f for an untruncated
        product: revealing it and dividing in clear saves the truncation's round).
        """
        with self.party.op("reveal"):
            if to is None:
                return self.party.fixed.decode(self.party.open(self.share), bits)
            peer = self.party.peer
            if self.party.party == to:
                theirs = peer.recv_array(np.uint64, (self.share.size,)).reshape(self.share.shape)
                return self.party.fixed.decode(self.share + theirs, bits)
            peer.send_array(self.share.reshape(-1))
            return None

    def _new(self, share: np.ndarray) -> SharedTensor:
        return SharedTensor(share, self.party)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.share.shape)

    @property
    def T(self) -> SharedTensor:
        return self._new(self.share.T)

    def __getitem__(self, index: Any) -> SharedTensor:
        return self._new(self.share[index])

    def reshape(self, *shape: int) -> SharedTensor:
        return self._new(self.share.reshape(*shape))

    def sum(self, axis: int | None = None) -> SharedTensor:
        return self._new(np.asarray(self.share.sum(axis=axis, dtype=np.uint64)))

    # linear operations: local ------------------------------------------------------------

    def _public(self, value: float | np.ndarray) -> np.ndarray:
        """A public value as this party's share: party 0 holds it, party 1 holds zero."""
        encoded = self.party.fixed.encode(value, "public operand")
        return encoded if self.party.party == 0 else np.zeros_like(encoded)

    def __add__(self, other: SharedTensor | float | np.ndarray) -> SharedTensor:
        if isinstance(other, SharedTensor):
            if other.shape != self.shape:
                raise ValueError(f"shapes differ: {self.shape} and {other.shape} (broadcast explicitly)")
            return self._new(self.share + other.share)
        return self._new(self.share + self._public(other))

    __radd__ = __add__

    def __neg__(self) -> SharedTensor:
        return self._new(-self.share)

    def __sub__(self, other: SharedTensor | float | np.ndarray) -> SharedTensor:
        return self + (-other)

    def __rsub__(self, other: float | np.ndarray) -> SharedTensor:
        return (-self) + other

    def truncate(self, bits: int | None = None) -> SharedTensor:
        """Divide by 2^bits (default: the fractional bits), rounding to a neighbour.

        With a source that deals truncation pairs (the dealer) this is
        :func:`truncate_with_pair`; with one that truncates with the peer (dealer-free) its
        ``exact_truncation``, one correlated OT per element. Either way one round, and the
        result is floor or floor + 1 for |raw| < 2^62, never anything else. A source with
        neither gets SecureML's local truncation: no round, fails with probability
        |raw| / 2^64. Booked as "truncate" unless an enclosing operation books it.
        """
        bits = bits or self.party.fixed.frac_bits
        exact = getattr(self.party.triples, "exact_truncation", None)
        with self.party.op("truncate"):
            if hasattr(self.party.triples, "truncation"):
                return self._new(truncate_with_pair(self.party, self.share, bits))
            if exact is not None:
                return self._new(exact(self.share, bits))
        return self._new(truncate_share(self.share, bits, self.party.party))

    def scale_int(self, factor: int) -> SharedTensor:
        """Multiply by a public integer: exact and local."""
        return self._new(self.share * np.uint64(factor % (1 << 64)))

    # multiplication: one Beaver triple, one round -------------------------------------------

    def __mul__(self, other: SharedTensor | float | np.ndarray) -> SharedTensor:
        if isinstance(other, SharedTensor):
            with self.party.op("mul"):
                return self._new(beaver_mul(self.party, self.share, other.share)).truncate()
        encoded = self.party.fixed.encode(other, "public operand")
        return self._new(self.share * encoded).truncate()

    __rmul__ = __mul__

    def __matmul__(self, other: SharedTensor | np.ndarray) -> SharedTensor:
        if isinstance(other, SharedTensor):
            with self.party.op("matmul"):
                return self._new(beaver_matmul(self.party, self.share, other.share)).truncate()
        return self._new(self.share @ self.party.fixed.encode(other, "public operand")).truncate()

    def matmul_raw(self, other: SharedTensor) -> SharedTensor:
        """``self @ other`` left untruncated (2f fractional bits), for a product about to be
        revealed: ``reveal(bits=2f)`` divides in clear, with no truncation round."""
        with self.party.op("matmul"):
            return self._new(beaver_matmul(self.party, self.share, other.share))

    def __rmatmul__(self, other: np.ndarray) -> SharedTensor:
        return self._new(self.party.fixed.encode(other, "public operand") @ self.share).truncate()

    # comparisons --------------------------------------------------------------------------

    def is_negative(self) -> SharedTensor:
        """Shares of 1.0 where x < 0, else 0.0: the sign bit, by a boolean carry chain."""
        with self.party.op("compare"):
            bit = sign_bit(self.party, self.share)
        return self._new(bit).scale_int(1 << self.party.fixed.frac_bits)

    def __lt__(self, other: float) -> SharedTensor:
        return (self - other).is_negative()

    def __gt__(self, other: float) -> SharedTensor:
        return (other - self).is_negative()

    def relu(self) -> SharedTensor:
        with self.party.op("relu"):
            bit = sign_bit(self.party, self.share)
            # shares of the integer 1 - b: party 0 adds the 1. No truncation needed after.
            positive = np.uint64(1) - bit if self.party.party == 0 else -bit
            return self._new(beaver_mul(self.party, self.share, positive))

    def clip(self, low: float, high: float) -> SharedTensor:
        """min(max(x, low), high) with one batched comparison."""
        stacked = concat([self - high, low - self])
        over = stacked.relu()
        above, below = (part.reshape(*self.shape) for part in split(over, 2))
        return self - above + below

    # approximations -------------------------------------------------------------------------

    def exp(self, iterations: int = 8) -> SharedTensor:
        """e^x as (1 + x/2^n)^(2^n); accurate for x in [-8, 2] (see module docstring)."""
        with self.party.op("exp"):
            result = self * (1.0 / (1 << iterations)) + 1.0
            for _ in range(iterations):
                result = result * result
            return result

    def reciprocal(self, low: float, high: float, iterations: int = 12) -> SharedTensor:
        """1/x for x in [low, high] (0 < low, high/low <= 256): Newton-Raphson from 1/high."""
        assert 0 < low < high and high / low <= 256
        with self.party.op("reciprocal"):
            estimate = SharedTensor.public(self.party, 1.0 / high, self.shape)
            for _ in range(iterations):
                estimate = estimate * (2.0 - self * estimate)
            return estimate

    def sigmoid(self, method: str = "clipped", raw: bool = False) -> SharedTensor:
        """1 / (1 + e^-x) by an odd Chebyshev series (see the module docstring for bounds).

        ``clipped``: t = clip(x/8, -1, 1) by comparison, then degree 15 in t (4 multiplication
        rounds). ``polynomial``: no comparison, degree 9 in t = x/16 (4 rounds, 8 products).
        ``raw``: this tensor is an untruncated product (2f fractional bits); the division by
        8 or 16, a power of two, then rides on its truncation (one round fewer with pairs).
        """
        if method not in SIGMOID_METHODS:
            raise ValueError(f"unknown sigmoid method {method!r}; expected one of {SIGMOID_METHODS}")
        with self.party.op("sigmoid"):
            scale_bits = SIGMOID_SCALE_BITS[method]
            t = self.truncate(scale_bits + (self.party.fixed.frac_bits if raw else 0))
            if method == "polynomial":
                degree, coefficients = SIGMOID_POLY_DEGREE, SIGMOID_POLY_COEFFICIENTS
            else:
                t = t.clip(-1.0, 1.0)
                degree, coefficients = SIGMOID_DEGREE, SIGMOID_COEFFICIENTS
            terms = chebyshev_odd(t, degree)
            return linear_combination([terms[k] for k in terms], [float(coefficients[k]) for k in terms], 0.5)


def linear_combination(
    tensors: Sequence[SharedTensor], weights: Sequence[float], constant: float = 0.0
) -> SharedTensor:
    """constant + sum_i weights_i * tensors_i with one truncation (one round with pairs)."""
    party = tensors[0].party
    raw = sum(
        (t.share * party.fixed.encode(w, "public weight") for t, w in zip(tensors, weights, strict=True)),
        start=np.zeros(tensors[0].shape, np.uint64),
    )
    if party.party == 0:
        raw = raw + (party.fixed.encode(constant, "public constant") << np.uint64(party.fixed.frac_bits))
    return SharedTensor(raw, party).truncate()


def truncate_with_pair(party: Party, share: np.ndarray, bits: int) -> np.ndarray:
    """Shares of floor(x / 2^bits) or floor(x / 2^bits) + 1 from a dealer's truncation pair.

    Probabilistic truncation over Z_2^k (k = 64) with the top-bit correction, after
    Escudero, Ghosh, Keller, Rachuri and Scholl (CRYPTO 2020, "Improved primitives for MPC
    over mixed arithmetic-binary circuits"). For x (the raw value) with |x| < 2^62, put
    x' = x + 2^62 in [0, 2^63) and open c = x' + r for the pair's uniform r: c is uniform, so
    the opening tells nothing. With c = c_63 2^63 + c_low and r = r_63 2^63 + r_low, no sum
    below bit 63 wraps, so x' = c_low - r_low + w 2^63 where the carry w = c_63 XOR r_63 is
    linear in the shares of r_63 once c is public. Then

        (c_low >> bits) - (r_low >> bits) + w 2^(63 - bits) - 2^(62 - bits)

    is floor(x / 2^bits) plus 0 or 1 (the borrow between the two shifted low parts), exactly,
    with no failure probability: error in [0, 1] ulp, and unbiased (+1 with probability
    frac(x / 2^bits) over r). Outside |x| < 2^62 the result is wrong: the range bound, as for
    every fixed-point value, is the caller's (``FixedPoint.bound`` keeps products far inside).
    Cost: one round, 8 bytes per element each way; the dealer sends party 1 two words per
    element.
    """
    pair: TruncationPair = party.triples.truncation(share.shape, bits)  # type: ignore[attr-defined]
    zero, one, two = np.uint64(0), np.uint64(1), np.uint64(2)
    offset = np.uint64(1 << 62) if party.party == 0 else zero
    opened = party.open(share + offset + pair.r)
    top, low = opened >> np.uint64(63), opened & np.uint64((1 << 63) - 1)
    carry = pair.top * (one - two * top)  # shares of r_63 XOR c_63 = r_63 + c_63 - 2 c_63 r_63
    result = (carry << np.uint64(63 - bits)) - pair.low
    if party.party == 0:
        carry_public = top << np.uint64(63 - bits)
        result = result + carry_public + (low >> np.uint64(bits)) - np.uint64(1 << (62 - bits))
    return result


def concat(tensors: Sequence[SharedTensor]) -> SharedTensor:
    """Flatten and join, so many element-wise products take one round."""
    return SharedTensor(np.concatenate([t.share.reshape(-1) for t in tensors]), tensors[0].party)


def split(tensor: SharedTensor, parts: int) -> list[SharedTensor]:
    return [tensor._new(piece) for piece in np.split(tensor.share, parts)]


def chebyshev_odd(t: SharedTensor, degree: int) -> dict[int, SharedTensor]:
    """T_k(t) for odd k <= degree in ceil(log2(degree)) rounds.

    Level by level from the highest power of two ``top`` known so far:
    T_{top+m} = 2 T_top T_m - T_{top-m} for 1 <= m <= top, all in one batched product.
    """
    terms: dict[int, SharedTensor] = {1: t}
    top = 1
    while top < degree:
        wanted = list(range(top + 1, min(2 * top, degree) + 1))
        products = fanout_mul(terms[top], [terms[k - top] for k in wanted])
        for k, product in zip(wanted, products, strict=True):
            low = 2 * top - k
            doubled = product.reshape(*t.shape).scale_int(2)
            terms[k] = doubled - 1.0 if low == 0 else doubled - terms[low]
        top *= 2
    return {k: terms[k] for k in range(1, degree + 1, 2)}


def fanout_mul(x: SharedTensor, ys: Sequence[SharedTensor]) -> list[SharedTensor]:
    """x * y_1, ..., x * y_m (truncated) in one round.

    With a source that has ``elementwise_fanout`` (dealer-free), x - a is opened once and
    the OTs carry all m products together; otherwise m element-wise triples.
    """
    party = x.party
    native = getattr(party.triples, "elementwise_fanout", None)
    if native is None:
        return split(concat([x] * len(ys)) * concat(ys), len(ys))
    with party.op("mul"):
        stacked = np.stack([y.share for y in ys])
        triple = native(x.shape, len(ys))
        opened = party.open(
            np.concatenate([(x.share - triple.a).reshape(-1), (stacked - triple.b).reshape(-1)])
        )
        d, e = opened[: x.share.size].reshape(x.shape), opened[x.share.size :].reshape(stacked.shape)
        z = triple.c + d[None] * triple.b + e * triple.a[None]
        if party.party == 0:
            z = z + d[None] * e
        truncated = x._new(z).truncate()  # all m at once: one round with truncation pairs
        return [truncated[i] for i in range(len(ys))]


def beaver_mul(party: Party, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Shares of x * y (no truncation) from one element-wise triple; one round."""
    assert x.shape == y.shape, "broadcast before multiplying shares"
    triple = party.triples.elementwise(x.shape)
    opened = party.open(np.concatenate([(x - triple.a).reshape(-1), (y - triple.b).reshape(-1)]))
    d, e = (part.reshape(x.shape) for part in np.split(opened, 2))
    z = triple.c + d * triple.b + e * triple.a
    return z + d * e if party.party == 0 else z


def beaver_matmul(party: Party, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Shares of x @ y (no truncation) from one matrix triple; one round."""
    assert x.ndim == 2 and y.ndim == 2 and x.shape[1] == y.shape[0]
    triple = party.triples.matmul((x.shape[0], x.shape[1]), (y.shape[0], y.shape[1]))
    opened = party.open(np.concatenate([(x - triple.a).reshape(-1), (y - triple.b).reshape(-1)]))
    d, e = opened[: x.size].reshape(x.shape), opened[x.size :].reshape(y.shape)
    z = triple.c + d @ triple.b + triple.a @ e
    return z + d @ e if party.party == 0 else z


def beaver_and(party: Party, x: np.ndarray, y: np.ndarray, lanes: int = 64) -> np.ndarray:
    """XOR-shares of x & y from one bitwise triple; one round.

    ``lanes``, when under 64, says only the top-aligned lanes in ``LANE_MASKS`` matter:
    the inputs are masked to them (so other lanes open as known zeros) and a source
    without native AND triples spends ring triples on those lanes only.
    """
    mask = LANE_MASKS[lanes]
    x, y = x & mask, y & mask
    triple = bitwise_triple(party, x.shape, lanes)
    opened_mine = np.concatenate([(x ^ triple.a).reshape(-1), (y ^ triple.b).reshape(-1)])
    opened = opened_mine ^ party.swap(opened_mine)
    d, e = (part.reshape(x.shape) for part in np.split(opened, 2))
    z = triple.c ^ (d & triple.b) ^ (e & triple.a)
    return (z ^ (d & e) if party.party == 0 else z) & mask


def _lane_mask(block: int) -> np.uint64:
    """Lanes i with (i + 1) % block == 0: the top lane of each block of ``block`` lanes."""
    return np.uint64(sum(1 << i for i in range(64) if (i + 1) % block == 0))


# lanes used -> mask. 64: every lane; otherwise the top lane of each block of 64 // lanes.
LANE_MASKS = {64 >> k: _lane_mask(1 << k) for k in range(7)}


def bitwise_triple(party: Party, shape: tuple[int, ...], lanes: int = 64) -> Triple:
    """An AND triple from the source, or, for a source without ``bitwise``, from ring triples.

    The fallback is exact: mod 2, additive shares are XOR shares and c = a * b reduces to
    a & b, so the low bits of element-wise ring triples fill the lanes of a word, one ring
    triple per lane used (``lanes`` of them, placed on ``LANE_MASKS[lanes]``).
    """
    native = getattr(party.triples, "bitwise", None)
    if native is not None:
        triple: Triple = native(shape)
        return triple
    positions = [i for i in range(64) if (int(LANE_MASKS[lanes]) >> i) & 1]
    ring = party.triples.elementwise((*shape, len(positions)))
    weights = np.array([1 << i for i in positions], dtype=np.uint64)
    packed = [
        ((part & np.uint64(1)) * weights).sum(axis=-1, dtype=np.uint64) for part in (ring.a, ring.b, ring.c)
    ]
    return Triple(*packed)


def sign_bit(party: Party, share: np.ndarray) -> np.ndarray:
    """Arithmetic shares (integers 0/1) of the sign bit of the shared value.

    Party 0's share and party 1's share are the two addends; their sum's top bit is
    x0_63 ^ x1_63 ^ carry_63. The carry comes from a binary tree over (generate,
    propagate) pairs of bits 0..62, all lanes of a word at once, XOR-shared: 1 + 6
    rounds, and 157 lane-ANDs per element rather than a full adder's 64 per level.
    """
    zero = np.zeros_like(share)
    left, right = (share, zero) if party.party == 0 else (zero, share)
    one = np.uint64(1)
    # Shifted up one lane, so lane 63 of the tree's root covers bits 0..62; lane 0 is the zero carry-in.
    generate = beaver_and(party, left, right) << one
    propagate = share << one  # x0 ^ x1, XOR-shared as (x0, x1)
    for level in range(1, 7):
        distance, lanes = np.uint64(1 << (level - 1)), 64 >> level
        if level < 6:
            both = beaver_and(
                party,
                np.concatenate([propagate, propagate]),
                np.concatenate([generate << distance, propagate << distance]),
                lanes,
            )
            g_term, propagate = np.split(both, 2)
        else:
            g_term = beaver_and(party, propagate, generate << distance, lanes)
        generate = (generate & ~LANE_MASKS[lanes]) | ((generate ^ g_term) & LANE_MASKS[lanes])
    bit = ((share ^ generate) >> np.uint64(63)) & one
    # bit is XOR-shared: b = b0 ^ b1 = b0 + b1 - 2 b0 b1.
    left, right = (bit, zero) if party.party == 0 else (zero, bit)
    product = beaver_mul(party, left, right)
    return bit - np.uint64(2) * product
