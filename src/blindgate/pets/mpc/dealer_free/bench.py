"""Measure dealer-free triples between two processes over pinned TLS, as they are deployed.

:func:`measure` starts party 1 in a child process, runs party 0 here, and returns a JSON-ready
dict: for each kind of request the seconds, bytes (both directions) and rate, and for the
logistic-regression mini-batch the seconds per batch and the projection to a whole run.
``benchmarks/mpc_lr.py`` calls it beside the full training; it never runs in the tests.

The mini-batch is the engine's request pattern as recorded from ``pets.ml.logreg`` (batch
1024, 51 features): two matrix triples, 18,432 element-wise triples and 24,576 64-lane AND
triples (the sigmoid's clip comparison and its degree-15 Chebyshev series). The "vertical"
variant replaces the two matrix triples by :meth:`clear_matmul` products, one per feature
block, which is what the engine can do when each party holds its feature columns in clear.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from blindgate.net import Channel, Identity, Listener, connect
from blindgate.pets.mpc.dealer_free.ole import BaseOts
from blindgate.pets.mpc.dealer_free.source import DealerFreeTripleSource

BATCH, FEATURES, WALLET_FEATURES = 1024, 51, 40
ELEMENTWISE_PER_BATCH = (1024, 2048, 2048, 2048, 4096, 7168)
BITWISE_PER_BATCH = (2048, 2048, 4096, 4096, 4096, 4096, 4096)

Step = Callable[[DealerFreeTripleSource, np.ndarray, np.ndarray], object]


def _generic_batch(source: DealerFreeTripleSource, x: np.ndarray, e: np.ndarray) -> None:
    source.matmul((BATCH, FEATURES), (FEATURES, 1))
    _nonlinear(source)
    source.matmul((FEATURES, BATCH), (BATCH, 1))


def _vertical_batch(source: DealerFreeTripleSource, x: np.ndarray, e: np.ndarray) -> None:
    blocks = ((0, slice(0, WALLET_FEATURES)), (1, slice(WALLET_FEATURES, FEATURES)))
    for holder, columns in blocks:  # X_b @ w, one feature block at a time
        width = columns.stop - columns.start
        block = x[:, columns] if source.party == holder else None
        source.clear_matmul(holder, block, (BATCH, width), np.zeros(width, dtype=np.uint64))
    _nonlinear(source)
    for holder, columns in blocks:  # X_b^T @ e
        width = columns.stop - columns.start
        block = np.ascontiguousarray(x[:, columns].T) if source.party == holder else None
        source.clear_matmul(holder, block, (width, BATCH), e)


def _nonlinear(source: DealerFreeTripleSource) -> None:
    for words in BITWISE_PER_BATCH:
        source.bitwise((words,))
    for count in ELEMENTWISE_PER_BATCH:
        source.elementwise((count,))


STEPS: dict[str, tuple[Step, int, str]] = {
    # name: (what one run does, how many units it makes, the unit)
    "elementwise": (lambda s, x, e: s.elementwise((1 << 14,)), 1 << 14, "triple"),
    "bitwise": (lambda s, x, e: s.bitwise((1 << 14,)), 1 << 14, "64-lane AND triple"),
    "matmul_forward": (lambda s, x, e: s.matmul((BATCH, FEATURES), (FEATURES, 1)), 1, "matrix triple"),
    "matmul_backward": (lambda s, x, e: s.matmul((FEATURES, BATCH), (BATCH, 1)), 1, "matrix triple"),
    "batch_generic": (_generic_batch, 1, "mini-batch"),
    "batch_vertical": (_vertical_batch, 1, "mini-batch"),
}


def _run_steps(channel: Channel, party: int, base_ots: BaseOts | None, repeats: int) -> dict[str, Any]:
    source = DealerFreeTripleSource(channel, party, base_ots)
    started = time.perf_counter()
    source.setup()
    results: dict[str, Any] = {"setup_s": round(time.perf_counter() - started, 4)}
    x = np.random.default_rng(0).integers(0, 1 << 20, (BATCH, FEATURES), dtype=np.uint64)
    e = np.zeros(BATCH, dtype=np.uint64)
    for name, (step, units, unit) in STEPS.items():
        before_sent, before_received = channel.stats.bytes_sent, channel.stats.bytes_received
        rounds = source.rounds
        started = time.perf_counter()
        for _ in range(repeats):
            step(source, x, e)
        seconds = (time.perf_counter() - started) / repeats
        moved = channel.stats.bytes_sent - before_sent + channel.stats.bytes_received - before_received
        results[name] = {
            "unit": unit,
            "seconds": round(seconds, 4),
            "units_per_s": round(units / seconds, 1),
            "bytes_per_unit": round(moved / repeats / units, 1),
            "rounds_per_unit": (source.rounds - rounds) / repeats / units,
        }
    return results


def _party_one(address: str, identity: Identity, peer_cert: bytes, base_ots: Any, repeats: int) -> None:
    with connect(address, identity, peer_cert, timeout=120) as channel:
        _run_steps(channel, 1, base_ots, repeats)


def measure(base_ots: BaseOts | None = None, repeats: int = 3, batches: int = 360) -> dict[str, Any]:
    """Time each kind of request with the parties as two processes over TLS on loopback.

    ``batches`` is how many mini-batches the projection covers: 10 epochs of the bank data's
    36,168 training rows at batch 1024 are 360. ``base_ots`` goes to the child process, so it
    must pickle (an instance of a module-level class); None means ``blindgate.pets.ot.base``.
    """
    ours, theirs = Identity.generate("party-0"), Identity.generate("party-1")
    with Listener("127.0.0.1:0", ours, theirs.cert_pem, timeout=120) as listener:
        child = multiprocessing.get_context("spawn").Process(
            target=_party_one,
            args=(f"127.0.0.1:{listener.port}", theirs, ours.cert_pem, base_ots, repeats),
            daemon=True,
        )
        child.start()
        try:
            with listener.accept(120) as channel:
                results = _run_steps(channel, 0, base_ots, repeats)
        finally:
            child.join(120)
    for variant in ("batch_generic", "batch_vertical"):
        results[variant]["projected_s"] = round(results[variant]["seconds"] * batches, 1)
    results["projected_batches"] = batches
    return results
