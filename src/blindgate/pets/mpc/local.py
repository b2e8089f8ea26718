"""Run a two-party program in one process, parties and dealer on threads over in-memory channels.

For tests and first tries: the same code as the separate-process runtime, only the
channels differ. The first failure on any side closes every channel, so the others
stop with a clear error instead of waiting for their timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from blindgate.net import Channel, memory_pair
from blindgate.pets.mpc.correlations import TripleSource
from blindgate.pets.mpc.dealer import DealerTriples, serve
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.runtime import Party

T = TypeVar("T")


def run_pair(
    program: Callable[[Party], T],
    frac_bits: int = 16,
    timeout: float = 30.0,
    triples: str = "dealer",
) -> tuple[T, T]:
    """Run ``program`` as party 0 and party 1; return both results.

    ``triples`` is ``"dealer"`` (a dealer thread) or ``"dealer-free"`` (the parties make
    their own triples over their channel, :mod:`blindgate.pets.mpc.dealer_free`).
    """
    assert triples in ("dealer", "dealer-free")
    p0_peer, p1_peer = memory_pair(timeout)
    d0, p0_dealer = memory_pair(timeout)
    d1, p1_dealer = memory_pair(timeout)
    channels: list[Channel] = [p0_peer, p1_peer, d0, p0_dealer, d1, p1_dealer]
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def fail(exc: BaseException) -> None:
        errors.append(exc)
        for channel in channels:
            channel.close()

    def party(index: int, peer: Channel, dealer: Channel) -> None:
        try:
            source = DealerTriples(index, dealer) if triples == "dealer" else _dealer_free(index, peer)
            runtime = Party(index, peer, source, FixedPoint(frac_bits))
            runtime.start()
            results[index] = program(runtime)
            if isinstance(source, DealerTriples):
                source.close()
            else:
                dealer.close()
        except BaseException as exc:  # reported to the caller below
            fail(exc)

    def dealer() -> None:
        if triples != "dealer":
            return
        try:
            serve(d0, d1)
        except BaseException as exc:
            fail(exc)

    threads = [
        threading.Thread(target=party, args=(0, p0_peer, p0_dealer), daemon=True),
        threading.Thread(target=party, args=(1, p1_peer, p1_dealer), daemon=True),
        threading.Thread(target=dealer, daemon=True),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout * 20)
    if errors:
        raise errors[0]
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError("a party did not finish")
    return results[0], results[1]


def _dealer_free(index: int, peer: Channel) -> TripleSource:
    from blindgate.pets.mpc.dealer_free import DealerFreeTripleSource

    return DealerFreeTripleSource(peer, index)
