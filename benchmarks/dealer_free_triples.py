"""Dealer-free triples between two processes over pinned TLS, as they are deployed.

    .venv/bin/python benchmarks/dealer_free_triples.py [--repeats N] [--batches N]

Starts party 1 in a child process, runs party 0 here, and prints one JSON object: for
each kind of request the seconds, bytes (both directions) and rate, and for the
logistic-regression mini-batch the seconds per batch and the projection to a whole run
(docs/dealer-free.md, "Measured"). ``benchmarks/mpc_lr.py`` times whole trainings.

The mini-batch is the engine's request pattern as recorded from ``pets.ml.logreg`` (batch
1024, 51 features): two matrix triples, 18,432 element-wise triples and 24,576 64-lane AND
triples (the sigmoid's clip comparison and its degree-15 Chebyshev series). The "vertical"
variant replaces the two matrix triples by :meth:`clear_matmul_pair` products (each feature
block times the shared operand, both blocks at once), which is what the engine can do
when each party holds its feature columns in clear.
"batch_vertical_fanout" is the same sigmoid asking for fan-out triples where an operand
repeats (what the engine can do with ``bitwise_fanout`` / ``elementwise_fanout``);
"batch_vertical_polynomial_sigmoid" is the same with a comparison-free sigmoid (three
element-wise products per row): what the batch would cost if the engine chose one.
"truncate" is the dealer-free truncation (``exact_truncation``) of 16,384 elements; the
batch patterns leave it out (about 10,000 truncated elements a training step, measured in
docs/dealer-free.md).
"""

from __future__ import annotations

import argparse
import json
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
_TRUNCATED = np.random.default_rng(1).integers(0, 2**64, 1 << 14, dtype=np.uint64)  # shares of anything


def _generic_batch(source: DealerFreeTripleSource, x: np.ndarray, e: np.ndarray) -> None:
    source.matmul((BATCH, FEATURES), (FEATURES, 1))
    _nonlinear(source)
    source.matmul((FEATURES, BATCH), (BATCH, 1))


def _vertical_batch(source: DealerFreeTripleSource, x: np.ndarray, e: np.ndarray) -> None:
    _vertical_products(source, x, e, _nonlinear)


def _vertical_polynomial_batch(source: DealerFreeTripleSource, x: np.ndarray, e: np.ndarray) -> None:
    _vertical_products(source, x, e, _odd_quintic)


def _vertical_fanout_batch(source: DealerFreeTripleSource, x: np.ndarray, e: np.ndarray) -> None:
    _vertical_products(source, x, e, _nonlinear_fanout)


def _nonlinear_fanout(source: DealerFreeTripleSource) -> None:
    """The engine's sigmoid asking for fan-out triples where one operand repeats: the carry
    chain's propagate bits against two operands, each Chebyshev level's T_top against T_m."""
    source.bitwise((2 * BATCH,))
    for _ in range(5):
        source.bitwise_fanout((2 * BATCH,), 2)
    source.bitwise((2 * BATCH,))
    source.elementwise((BATCH,))
    for fanout in (2, 4, 7):
        source.elementwise_fanout((BATCH,), fanout)
    for _ in range(2):
        source.elementwise((2 * BATCH,))


def _odd_quintic(source: DealerFreeTripleSource) -> None:
    """What a comparison-free degree-5 odd polynomial sigmoid would ask for: x^2, x^3, x^5."""
    for _ in range(3):
        source.elementwise((BATCH,))


def _vertical_products(
    source: DealerFreeTripleSource,
    x: np.ndarray,
    e: np.ndarray,
    sigmoid: Callable[[DealerFreeTripleSource], None],
) -> None:
    """X_b @ w and X_b^T @ e with each party's feature block in clear, both blocks at once."""
    widths = (WALLET_FEATURES, FEATURES - WALLET_FEATURES)
    own = x[:, :WALLET_FEATURES] if source.party == 0 else x[:, WALLET_FEATURES:]
    weights = (np.zeros(widths[0], dtype=np.uint64), np.zeros(widths[1], dtype=np.uint64))
    source.clear_matmul_pair(own, ((BATCH, widths[0]), (BATCH, widths[1])), weights)
    sigmoid(source)
    transposed = np.ascontiguousarray(own.T)
    source.clear_matmul_pair(transposed, ((widths[0], BATCH), (widths[1], BATCH)), (e, e))


def _nonlinear(source: DealerFreeTripleSource) -> None:
    for words in BITWISE_PER_BATCH:
        source.bitwise((words,))
    for count in ELEMENTWISE_PER_BATCH:
        source.elementwise((count,))


STEPS: dict[str, tuple[Step, int, str]] = {
    # name: (what one run does, how many units it makes, the unit)
    "elementwise": (lambda s, x, e: s.elementwise((1 << 14,)), 1 << 14, "triple"),
    "bitwise": (lambda s, x, e: s.bitwise((1 << 14,)), 1 << 14, "64-lane AND triple"),
    # the known-MSB truncation by 16 bits (the engine's after every product): one OT per element
    "truncate": (lambda s, x, e: s.exact_truncation(_TRUNCATED, 16), 1 << 14, "truncated element"),
    "matmul_forward": (lambda s, x, e: s.matmul((BATCH, FEATURES), (FEATURES, 1)), 1, "matrix triple"),
    "matmul_backward": (lambda s, x, e: s.matmul((FEATURES, BATCH), (BATCH, 1)), 1, "matrix triple"),
    "batch_generic": (_generic_batch, 1, "mini-batch"),
    "batch_vertical": (_vertical_batch, 1, "mini-batch"),
    "batch_vertical_fanout": (_vertical_fanout_batch, 1, "mini-batch"),
    "batch_vertical_polynomial_sigmoid": (_vertical_polynomial_batch, 1, "mini-batch"),
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
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            step(source, x, e)
        seconds = (time.perf_counter() - started) / repeats
        cpu_seconds = (time.process_time() - cpu_started) / repeats
        moved = channel.stats.bytes_sent - before_sent + channel.stats.bytes_received - before_received
        results[name] = {
            "unit": unit,
            "seconds": round(seconds, 4),
            # Party 0's CPU time: what the step costs on a quiet machine, whatever the load now.
            "cpu_seconds_party0": round(cpu_seconds, 4),
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
    for variant in STEPS:
        if not variant.startswith("batch"):
            continue
        results[variant]["projected_s"] = round(results[variant]["seconds"] * batches, 1)
        results[variant]["projected_cpu_s_party0"] = round(
            results[variant]["cpu_seconds_party0"] * batches, 1
        )
    results["projected_batches"] = batches
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each step")
    parser.add_argument("--batches", type=int, default=360, help="mini-batches the projection covers")
    args = parser.parse_args()
    print(json.dumps(measure(repeats=args.repeats, batches=args.batches), indent=2))


if __name__ == "__main__":
    main()
