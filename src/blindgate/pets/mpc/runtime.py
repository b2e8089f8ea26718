"""One party's side of a two-party computation: the peer channel, triples, and costs.

The two parties run the same program; each holds a :class:`Party` with its channel to
the other and its :class:`TripleSource`. Every opening is one ``Channel.exchange``: both
parties send their share at once and read the other's (full duplex over a socket, so one
one-way latency per round), and the bytes and rounds it costs are booked against the
name of the operation in progress, so a protocol can say what each step cost.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.net.channel import decode_array, encode_array
from blindgate.pets.mpc.correlations import TripleSource
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.prg import Prg, new_seed

PROTOCOL = "blindgate-mpc"
VERSION = 1


@dataclass
class OpCost:
    calls: int = 0
    rounds: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0


@dataclass
class Party:
    """This party's runtime: who it is, how it reaches the peer, where its triples come from."""

    party: int
    peer: Channel
    triples: TripleSource
    fixed: FixedPoint = field(default_factory=FixedPoint)
    costs: dict[str, OpCost] = field(default_factory=dict)
    _shared_prg: Prg | None = None
    _op: str = "other"

    def __post_init__(self) -> None:
        assert self.party in (0, 1) and self.triples.party == self.party

    def start(self, **params: object) -> dict[str, object]:
        """Check the peer runs the same protocol and agree on a common PRG for input sharing."""
        theirs = self.peer.hello(
            PROTOCOL, VERSION, party=self.party, frac_bits=self.fixed.frac_bits, **params
        )
        if theirs.get("party") != 1 - self.party or theirs.get("frac_bits") != self.fixed.frac_bits:
            raise MalformedFrame("the peer plays the same role, or encodes with other fractional bits")
        mine = new_seed()
        other = self.peer.exchange(mine)
        if len(other) != len(mine):
            raise MalformedFrame("expected a seed from the peer")
        # Both parties hold the common seed; it only masks inputs the owner already knows.
        common = bytes(x ^ y for x, y in zip(mine, other, strict=True))
        self._shared_prg = Prg(common)
        return theirs

    @property
    def shared_prg(self) -> Prg:
        assert self._shared_prg is not None, "call start() first"
        return self._shared_prg

    @contextlib.contextmanager
    def op(self, name: str) -> Iterator[None]:
        """Book the cost of what runs inside against ``name`` (outermost name wins)."""
        if self._op != "other":
            yield
            return
        cost = self.costs.setdefault(name, OpCost())
        before = self.peer.stats.snapshot()
        source_rounds = getattr(self.triples, "rounds", 0)  # a dealer-free source counts its own
        started = time.perf_counter()
        self._op = name
        try:
            yield
        finally:
            self._op = "other"
            cost.calls += 1
            cost.seconds += time.perf_counter() - started
            cost.bytes_sent += self.peer.stats.since(before).bytes_sent
            cost.rounds += getattr(self.triples, "rounds", 0) - source_rounds

    def swap(self, mine: np.ndarray) -> np.ndarray:
        """Send our array and receive the peer's of the same shape: one round."""
        return self.exchange(mine, np.shape(mine))

    def exchange(self, mine: np.ndarray, theirs: tuple[int, ...]) -> np.ndarray:
        """Send our array and receive the peer's, of shape ``theirs``: one round."""
        mine = np.ascontiguousarray(mine, dtype=np.uint64)  # (this makes a scalar 1-d)
        size = int(np.prod(theirs, dtype=np.int64))
        frame = self.peer.exchange(encode_array(mine.reshape(-1)))
        received = decode_array(frame, np.uint64, (size,)).reshape(theirs)
        self.costs.setdefault(self._op, OpCost()).rounds += 1
        return received

    def open(self, share: np.ndarray) -> np.ndarray:
        """Reveal a shared array to both parties: one round."""
        return share + self.swap(share)

    def total(self) -> OpCost:
        total = OpCost()
        for cost in self.costs.values():
            total.calls += cost.calls
            total.rounds += cost.rounds
            total.bytes_sent += cost.bytes_sent
        total.seconds = sum(c.seconds for c in self.costs.values())
        return total
