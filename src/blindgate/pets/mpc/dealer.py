"""The dealer: a third party that hands out correlated randomness and sees none of the data.

Trust: semi-honest, and the dealer must not collude with either party (with either
party's view it could unmask the other's inputs). It sees only the shapes of what is
asked for (and, for masked products, which rows), never a share of data.

Cost: at set-up the dealer sends each party a 32-byte seed. Party 0 expands all its
shares from its seed and never talks to the dealer again; party 1 expands its own random
values (a1, b1, r1, its operand masks) from its seed and receives only its correction
(c1 = a*b - c0, or the truncation pair's two words) per request. The dealer expands both
seeds itself, so it does each multiplication once.

What it hands out:
- Beaver triples: element-wise (``mul``), matrix (``matmul``), AND over 64 bit lanes (``and``);
- truncation pairs (``trunc``): r uniform over Z_2^64 with shares of its top bit and of
  (r mod 2^63) >> f, for a truncation that cannot fail (``tensor.truncate_with_pair``);
- masked products (``mask``, ``masked``): SecureML's reuse of one mask A per clear matrix
  X, X - A sent to the peer once, then per product a fresh operand mask B and shares of
  A[rows] @ B. The dealer keeps only the 32-byte key of A and re-derives rows on demand.

Party 1 asks for its correction when it draws its own randomness and reads the answer
only when the engine needs it, after the peer round: the dealer's round trip overlaps it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.mpc.correlations import MaskedProduct, MaskedShares, Triple, TruncationPair
from blindgate.pets.mpc.prg import SEED_BYTES, Prg, expand_at, new_seed

PROTOCOL = "blindgate-mpc-dealer"
VERSION = 2
MAX_ELEMENTS = 1 << 28  # a bound on one request, so a confused peer cannot make us allocate without end
KINDS = {"mul", "matmul", "and", "trunc", "mask", "masked", "done"}
TOP = np.uint64(63)
LOW_BITS = np.uint64((1 << 63) - 1)


def _shape(value: Any) -> tuple[int, ...]:
    try:
        shape = tuple(int(n) for n in value)
    except (TypeError, ValueError) as exc:
        raise MalformedFrame("request with a bad shape") from exc
    if any(n < 0 for n in shape) or int(np.prod(shape, dtype=np.int64)) > MAX_ELEMENTS:
        raise MalformedFrame("request with a bad shape")
    return shape


def _request(request: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(request, dict) or request.get("kind") not in KINDS:
        raise MalformedFrame("expected a dealer request")
    return str(request["kind"]), request


def _expand(prg: Prg, kind: str, left: tuple[int, ...], right: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The a and b shares a seed expands to, in the order both sides draw them."""
    if kind == "matmul":
        return prg.uint64(left), prg.uint64(right)
    return prg.uint64(left), prg.uint64(left)


def _combine(kind: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if kind == "matmul":
        return a @ b
    if kind == "and":
        return a & b
    return a * b


def truncation_parts(r: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """r's top bit and (r mod 2^63) >> bits: what a truncation pair shares besides r."""
    return r >> TOP, (r & LOW_BITS) >> np.uint64(bits)


def _masked_shapes(product: MaskedProduct, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Shapes of the operand mask B and of C for one masked product (X of ``width`` columns)."""
    rows = product.stop - product.start
    if product.transpose:
        return (rows, product.columns), (width, product.columns)
    return (width, product.columns), (rows, product.columns)


def _masked_products(
    request: dict[str, Any], masks: dict[int, tuple[bytes, int, int]]
) -> list[MaskedProduct]:
    products = request.get("products")
    if not isinstance(products, list) or not products:
        raise MalformedFrame("masked request without products")
    parsed = []
    for item in products:
        try:
            holder, start, stop, transpose, columns = (int(n) for n in item)
        except (TypeError, ValueError) as exc:
            raise MalformedFrame("masked product with a bad description") from exc
        if holder not in masks:
            raise MalformedFrame("masked product for a matrix never registered")
        _, rows, width = masks[holder]
        too_big = (stop - start) * max(width, columns) > MAX_ELEMENTS
        if not 0 <= start < stop <= rows or columns < 1 or too_big:
            raise MalformedFrame("masked product outside the registered matrix")
        parsed.append(MaskedProduct(holder, start, stop, bool(transpose), columns))
    return parsed


class _Dealer:
    """The dealer's state: both parties' streams and the keys of registered masks."""

    def __init__(self, seeds: tuple[bytes, bytes], to_party1: Channel) -> None:
        self.prgs = (Prg(seeds[0]), Prg(seeds[1]))
        self.to_party1 = to_party1
        self.masks: dict[int, tuple[bytes, int, int]] = {}  # holder -> (key, rows, width)
        self._rows: dict[int, tuple[int, int, np.ndarray]] = {}  # holder -> last rows derived

    def triple(self, kind: str, request: dict[str, Any]) -> None:
        left, right = _shape(request.get("left", ())), _shape(request.get("right", ()))
        if kind == "matmul" and (len(left) != 2 or len(right) != 2 or left[1] != right[0]):
            raise MalformedFrame("matmul triple with mismatched shapes")
        prg0, prg1 = self.prgs
        a0, b0 = _expand(prg0, kind, left, right)
        a1, b1 = _expand(prg1, kind, left, right)
        if kind == "and":
            c0 = prg0.uint64(a0.shape)
            self.to_party1.send_array(_combine(kind, a0 ^ a1, b0 ^ b1) ^ c0)
        else:
            c = _combine(kind, a0 + a1, b0 + b1)
            self.to_party1.send_array(c - prg0.uint64(c.shape))

    def truncation(self, request: dict[str, Any]) -> None:
        shape = _shape(request.get("shape", ()))
        bits = request.get("bits")
        if not isinstance(bits, int) or not 1 <= bits <= 62:
            raise MalformedFrame("truncation pair with a bad bit count")
        prg0, prg1 = self.prgs
        r0, top0, low0 = prg0.uint64(shape), prg0.uint64(shape), prg0.uint64(shape)
        top, low = truncation_parts(r0 + prg1.uint64(shape), bits)
        self.to_party1.send_array(np.stack([top - top0, low - low0]))

    def mask(self, request: dict[str, Any]) -> None:
        holder, shape = request.get("holder"), _shape(request.get("shape", ()))
        if holder not in (0, 1) or holder in self.masks or len(shape) != 2:
            raise MalformedFrame("a mask is registered once per holder, for a matrix")
        self.masks[holder] = (self.prgs[holder].key(), shape[0], shape[1])

    def rows(self, holder: int, start: int, stop: int) -> np.ndarray:
        """Rows start..stop of the holder's mask A, re-derived from its key (last rows cached)."""
        cached = self._rows.get(holder)
        if cached is not None and cached[:2] == (start, stop):
            return cached[2]
        key, _, width = self.masks[holder]
        block = expand_at(key, start * width, (stop - start) * width).reshape(stop - start, width)
        self._rows[holder] = (start, stop, block)
        return block

    def masked(self, request: dict[str, Any]) -> None:
        corrections = []
        for product in _masked_products(request, self.masks):
            b_shape, c_shape = _masked_shapes(product, self.masks[product.holder][2])
            b = self.prgs[1 - product.holder].uint64(b_shape)
            a = self.rows(product.holder, product.start, product.stop)
            c = (a.T if product.transpose else a) @ b
            corrections.append((c - self.prgs[0].uint64(c_shape)).reshape(-1))
        self.to_party1.send_array(np.concatenate(corrections))


def serve(first: Channel, second: Channel, stats: dict[str, float] | None = None) -> int:
    """Run the dealer for the two parties (either order); return the number of requests served.

    ``stats``, when given, gets ``busy_seconds``: time spent making and sending answers (not
    waiting for requests), for benchmarks.
    """
    seeds = new_seed(), new_seed()
    channels = {}
    for channel in (first, second):
        claimed = channel.hello(PROTOCOL, VERSION, role="dealer").get("party")
        if claimed not in (0, 1) or claimed in channels:
            raise MalformedFrame("each of the two parties must connect once, as party 0 or 1")
        channels[claimed] = channel
    to_party0, to_party1 = channels[0], channels[1]
    to_party0.send(seeds[0])
    to_party1.send(seeds[1])
    dealer = _Dealer(seeds, to_party1)
    handlers: dict[str, Callable[[dict[str, Any]], None]] = {
        "trunc": dealer.truncation,
        "mask": dealer.mask,
        "masked": dealer.masked,
    }
    dealt, busy = 0, 0.0
    while True:
        kind, request = _request(to_party1.recv_json())
        started = time.perf_counter()
        if kind == "done":
            to_party0.send_json({"kind": "done"})
            if stats is not None:
                stats.update(requests=dealt, busy_seconds=busy)
            return dealt
        if kind in handlers:
            handlers[kind](request)
        else:
            dealer.triple(kind, request)
        dealt += 1
        busy += time.perf_counter() - started


class _Owed:
    """A correction party 1 asked the dealer for and has not read yet."""

    __slots__ = ("shape", "value")

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape
        self.value: np.ndarray | None = None


class DealerTriples:
    """This party's end of the dealer: a triple source (with truncation pairs and masked
    products) over a channel to the dealer."""

    def __init__(self, party: int, dealer: Channel) -> None:
        assert party in (0, 1)
        self.party = party
        self._dealer = dealer
        peer = dealer.hello(PROTOCOL, VERSION, party=party)
        if peer.get("role") != "dealer":
            raise MalformedFrame("expected the dealer on this connection")
        seed = dealer.recv()
        if len(seed) != SEED_BYTES:
            raise MalformedFrame("expected a seed from the dealer")
        self._prg = Prg(seed)
        self._owed: deque[_Owed] = deque()
        self._widths: dict[int, int] = {}

    def _ask(self, request: dict[str, Any], shape: tuple[int, ...]) -> Callable[[], np.ndarray]:
        """Party 1: send a request now; the returned function reads its answer when called.

        Answers come in request order, so reading one reads (and keeps) any asked before it.
        """
        self._dealer.send_json(request)
        slot = _Owed(shape)
        self._owed.append(slot)

        def fetch() -> np.ndarray:
            while slot.value is None:
                head = self._owed.popleft()
                head.value = self._dealer.recv_array(np.uint64, head.shape)
            return slot.value

        return fetch

    def _triple(
        self, kind: str, left: tuple[int, ...], right: tuple[int, ...], out: tuple[int, ...]
    ) -> Triple:
        a, b = _expand(self._prg, kind, left, right)
        if self.party == 0:
            return Triple(a, b, self._prg.uint64(out))
        return Triple(a, b, self._ask({"kind": kind, "left": list(left), "right": list(right)}, out))

    def elementwise(self, shape: tuple[int, ...]) -> Triple:
        return self._triple("mul", tuple(shape), (), tuple(shape))

    def matmul(self, left: tuple[int, int], right: tuple[int, int]) -> Triple:
        return self._triple("matmul", tuple(left), tuple(right), (left[0], right[1]))

    def bitwise(self, shape: tuple[int, ...]) -> Triple:
        return self._triple("and", tuple(shape), (), tuple(shape))

    def truncation(self, shape: tuple[int, ...], bits: int) -> TruncationPair:
        """Shares of r, its top bit and (r mod 2^63) >> bits (party 1 reads its two lazily)."""
        shape = tuple(shape)
        r = self._prg.uint64(shape)
        if self.party == 0:
            return TruncationPair(r, self._prg.uint64((2, *shape)))  # top0 then low0, as the dealer draws
        request = {"kind": "trunc", "shape": list(shape), "bits": bits}
        return TruncationPair(r, self._ask(request, (2, *shape)))

    def mask(self, holder: int, shape: tuple[int, int]) -> bytes | None:
        """Register the holder's clear matrix (``shape``); the holder gets the key of its mask A."""
        self._widths[holder] = shape[1]
        key = self._prg.key() if self.party == holder else None
        if self.party == 1:
            self._dealer.send_json({"kind": "mask", "holder": holder, "shape": list(shape)})
        return key

    def masked(self, products: Sequence[MaskedProduct]) -> list[MaskedShares]:
        """Operand masks and shares of C for several masked products, in one dealer request."""
        shares, sizes = [], []
        for product in products:
            b_shape, c_shape = _masked_shapes(product, self._widths[product.holder])
            b = self._prg.uint64(b_shape) if self.party != product.holder else None
            if self.party == 0:
                shares.append(MaskedShares(b, self._prg.uint64(c_shape)))
            else:
                shares.append(MaskedShares(b, np.empty(0, np.uint64)))
            sizes.append(c_shape)
        if self.party == 0:
            return shares
        described = [[p.holder, p.start, p.stop, int(p.transpose), p.columns] for p in products]
        total = sum(int(np.prod(shape)) for shape in sizes)
        fetch = self._ask({"kind": "masked", "products": described}, (total,))
        return [
            MaskedShares(share.b, _piece(fetch, sum(int(np.prod(s)) for s in sizes[:i]), shape))
            for i, (share, shape) in enumerate(zip(shares, sizes, strict=True))
        ]

    def close(self) -> None:
        """Party 1 releases the dealer; party 0 waits for the dealer's goodbye."""
        if self.party == 1:
            self._dealer.send_json({"kind": "done"})
        else:
            self._dealer.recv_json()
        self._dealer.close()


def _piece(fetch: Callable[[], np.ndarray], offset: int, shape: tuple[int, ...]) -> Callable[[], np.ndarray]:
    size = int(np.prod(shape))
    return lambda: fetch()[offset : offset + size].reshape(shape)
