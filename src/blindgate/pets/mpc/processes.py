"""Run a two-party program as separate OS processes over pinned TLS on loopback.

The same program as :func:`blindgate.pets.mpc.local.run_pair`, but each party (and the
dealer) is its own process, so the figures include real serialisation, TLS and
scheduling. Used by benchmarks; `blindgate train` wires the same pieces from its flags.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blindgate.net import Identity, Listener, connect, free_port
from blindgate.pets.mpc.correlations import TripleSource
from blindgate.pets.mpc.dealer import DealerTriples, serve
from blindgate.pets.mpc.fixed_point import FixedPoint
from blindgate.pets.mpc.runtime import Party

NAMES = ("party0", "party1", "dealer")


def _party(
    index: int,
    keys: str,
    ports: tuple[int, int],
    triples: str,
    frac_bits: int,
    timeout: float,
    program: Callable[[Party, Any], Any],
    argument: Any,
    results: Any,
) -> None:
    try:
        root = Path(keys)
        me = Identity.load(root / NAMES[index])
        other = (root / NAMES[1 - index] / "cert.pem").read_bytes()
        if index == 0:
            with Listener(f"127.0.0.1:{ports[0]}", me, other, timeout) as listener:
                peer = listener.accept()
        else:
            peer = connect(f"127.0.0.1:{ports[0]}", me, other, timeout)
        source: TripleSource
        if triples == "dealer":
            dealer_cert = (root / "dealer" / "cert.pem").read_bytes()
            source = DealerTriples(index, connect(f"127.0.0.1:{ports[1]}", me, dealer_cert, timeout))
        else:
            from blindgate.pets.mpc.dealer_free import DealerFreeTripleSource

            source = DealerFreeTripleSource(peer, index)
        party = Party(index, peer, source, FixedPoint(frac_bits))
        party.start()
        result = program(party, argument)
        if isinstance(source, DealerTriples):
            source.close()
        peer.close()
        results.put((index, "ok", result))
    except BaseException:
        results.put((index, "error", traceback.format_exc(limit=3)))


def _dealer(keys: str, port: int, timeout: float, results: Any) -> None:
    try:
        root = Path(keys)
        certs = b"".join((root / name / "cert.pem").read_bytes() for name in NAMES[:2])
        with Listener(f"127.0.0.1:{port}", Identity.load(root / "dealer"), certs, timeout) as listener:
            first, second = listener.accept(), listener.accept()
        stats: dict[str, float] = {}
        serve(first, second, stats)
        results.put((2, "ok", stats))
    except BaseException:
        results.put((2, "error", traceback.format_exc(limit=3)))


def run_processes(
    program: Callable[[Party, Any], Any],
    arguments: tuple[Any, Any],
    triples: str = "dealer",
    frac_bits: int = 16,
    timeout: float = 120.0,
    dealer_stats: dict[str, float] | None = None,
) -> tuple[Any, Any]:
    """``program(party, arguments[i])`` in party i's process; returns both results.

    ``program`` must be a module-level function (it is pickled into the processes).
    ``dealer_stats``, when given, receives the dealer's request count and busy seconds.
    """
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    with tempfile.TemporaryDirectory(prefix="blindgate-mpc-") as keys:
        for name in NAMES:
            Identity.generate(name).save(Path(keys) / name)
        ports = (free_port(), free_port())
        processes = [
            context.Process(
                target=_party,
                args=(i, keys, ports, triples, frac_bits, timeout, program, arguments[i], results),
            )
            for i in (0, 1)
        ]
        if triples == "dealer":
            processes.append(context.Process(target=_dealer, args=(keys, ports[1], timeout, results)))
        for process in processes:
            process.start()
        collected: dict[int, Any] = {}
        try:
            for _ in processes:
                index, status, value = results.get(timeout=timeout * 50)
                if status != "ok":
                    raise RuntimeError(f"{NAMES[index]} failed:\n{value}")
                collected[index] = value
        finally:
            for process in processes:
                process.join(5)
                if process.is_alive():
                    process.terminate()
    if dealer_stats is not None and 2 in collected:
        dealer_stats.update(collected[2])
    return collected[0], collected[1]
