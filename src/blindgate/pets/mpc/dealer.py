"""The dealer: a third party that hands out Beaver triples and sees none of the data.

Trust: semi-honest, and the dealer must not collude with either party (with either
party's view it could unmask the other's inputs). It sees only the shapes of the
triples asked for, never a share of data.

Cost: at set-up the dealer sends each party a 32-byte seed. Party 0 expands all its
shares (a0, b0, c0) from its seed and never talks to the dealer again; party 1 expands
a1, b1 from its seed and receives only c1 = a*b - c0 (one array the size of c) per
triple. The dealer expands both seeds itself, so it does the multiplication once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.mpc.correlations import Triple
from blindgate.pets.mpc.prg import SEED_BYTES, Prg, new_seed
from blindgate.pets.mpc.runtime import hello_in_turn

PROTOCOL = "blindgate-mpc-dealer"
VERSION = 1
MAX_ELEMENTS = 1 << 28  # a bound on one request, so a confused peer cannot make us allocate without end


def _request_shape(request: Any) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    if not isinstance(request, dict) or request.get("kind") not in {"mul", "matmul", "and", "done"}:
        raise MalformedFrame("expected a triple request")
    try:
        left = tuple(int(n) for n in request.get("left", ()))
        right = tuple(int(n) for n in request.get("right", ()))
    except (TypeError, ValueError) as exc:
        raise MalformedFrame("triple request with a bad shape") from exc
    if any(n < 0 for n in left + right) or int(np.prod(left)) > MAX_ELEMENTS:
        raise MalformedFrame("triple request with a bad shape")
    if request["kind"] == "matmul" and (len(left) != 2 or len(right) != 2 or left[1] != right[0]):
        raise MalformedFrame("matmul triple with mismatched shapes")
    return str(request["kind"]), left, right


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


def serve(first: Channel, second: Channel) -> int:
    """Run the dealer for the two parties (either order); return the number of triples dealt."""
    seeds = new_seed(), new_seed()
    channels = {}
    for channel in (first, second):
        claimed = hello_in_turn(channel, True, PROTOCOL, VERSION, role="dealer").get("party")
        if claimed not in (0, 1) or claimed in channels:
            raise MalformedFrame("each of the two parties must connect once, as party 0 or 1")
        channels[claimed] = channel
    to_party0, to_party1 = channels[0], channels[1]
    to_party0.send(seeds[0])
    to_party1.send(seeds[1])
    prg0, prg1 = Prg(seeds[0]), Prg(seeds[1])
    dealt = 0
    while True:
        kind, left, right = _request_shape(to_party1.recv_json())
        if kind == "done":
            to_party0.send_json({"kind": "done"})
            return dealt
        a0, b0 = _expand(prg0, kind, left, right)
        a1, b1 = _expand(prg1, kind, left, right)
        if kind == "and":
            c0 = prg0.uint64(a0.shape)
            to_party1.send_array(_combine(kind, a0 ^ a1, b0 ^ b1) ^ c0)
        else:
            c = _combine(kind, a0 + a1, b0 + b1)
            c0 = prg0.uint64(c.shape)
            to_party1.send_array(c - c0)
        dealt += 1


class DealerTriples:
    """This party's end of the dealer: a :class:`TripleSource` over a channel to the dealer."""

    def __init__(self, party: int, dealer: Channel) -> None:
        assert party in (0, 1)
        self.party = party
        self._dealer = dealer
        peer = hello_in_turn(dealer, False, PROTOCOL, VERSION, party=party)
        if peer.get("role") != "dealer":
            raise MalformedFrame("expected the dealer on this connection")
        seed = dealer.recv()
        if len(seed) != SEED_BYTES:
            raise MalformedFrame("expected a seed from the dealer")
        self._prg = Prg(seed)

    def _triple(
        self, kind: str, left: tuple[int, ...], right: tuple[int, ...], out: tuple[int, ...]
    ) -> Triple:
        a, b = _expand(self._prg, kind, left, right)
        if self.party == 0:
            return Triple(a, b, self._prg.uint64(out))
        self._dealer.send_json({"kind": kind, "left": list(left), "right": list(right)})
        return Triple(a, b, self._dealer.recv_array(np.uint64, out).copy())

    def elementwise(self, shape: tuple[int, ...]) -> Triple:
        return self._triple("mul", tuple(shape), (), tuple(shape))

    def matmul(self, left: tuple[int, int], right: tuple[int, int]) -> Triple:
        return self._triple("matmul", tuple(left), tuple(right), (left[0], right[1]))

    def bitwise(self, shape: tuple[int, ...]) -> Triple:
        return self._triple("and", tuple(shape), (), tuple(shape))

    def close(self) -> None:
        """Party 1 releases the dealer; party 0 waits for the dealer's goodbye."""
        if self.party == 1:
            self._dealer.send_json({"kind": "done"})
        else:
            self._dealer.recv_json()
        self._dealer.close()
