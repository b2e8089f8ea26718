"""Joint logistic regression on secret shares: wall time, bytes and rounds, against SPU.

Prints one JSON object. In the same run:
- ours, parties (and the dealer) as separate processes over pinned TLS on loopback, 10 epochs
  of mini-batch SGD (batch 1024, learning rate 0.1) on the bank data, in both
  correlated-randomness modes, and on a synthetic rows x cols set;
- SecretFlow SPU 0.9.5's simulator (all parties in one process) training the same SS-LR on
  the same rows under SEMI2K and CHEETAH, in its own side environment (``side_env``:
  spu 0.9.5, numpy<2, jax 0.4.34, scikit-learn), created on first use under a lock;
- single-row secure prediction latency, p50 and p99, over loopback TLS.

Sizes can be reduced by flags (the JSON records what ran). Usage:
    .venv/bin/python benchmarks/mpc_lr.py [--synthetic-rows 1000000] [--spu SEMI2K,CHEETAH] ...
Only the 1,000,000 x 100 dealer run (10 epochs, batch 1024, lr 0.1):
    .venv/bin/python benchmarks/mpc_lr.py --parts synthetic --synthetic-modes dealer
The dealer-free mode at 1,000,000 x 100 (hours for 10 epochs here): the same set-up, then
only the first 300 steps (3 minutes here), timed one by one; the JSON extrapolates to the
10 epochs' 9,770 steps and says so ("extrapolated": true); the dealer mode likewise, to compare:
    .venv/bin/python benchmarks/mpc_lr.py --parts synthetic --synthetic-modes dealer-free \
        --synthetic-steps 300
SPU at 1,000,000 x 100 (hours under CHEETAH here): one epoch on the first 20 and on the first
60 batches, the difference being 40 steps' cost, extrapolated to the 10 epochs' 9,770 steps:
    .venv/bin/python benchmarks/mpc_lr.py --parts synthetic --synthetic-modes dealer \
        --synthetic-steps 300 --spu-synthetic-steps 20,60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from side_env import SideEnv, ensure

from blindgate.pets.ml.bank import split_bank_marketing
from blindgate.pets.ml.data import read_table
from blindgate.pets.ml.joint import split_rows
from blindgate.pets.ml.launcher import joined_plaintext
from blindgate.pets.ml.logreg import TrainConfig, train_plaintext, train_shared
from blindgate.pets.mpc.processes import run_processes
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor

HERE = Path(__file__).resolve().parent
BANK = HERE.parent.parent / "shared" / "data" / "bank-marketing.csv"
SPU_LR = SideEnv(
    "spu",
    ("spu==0.9.5", "numpy<2", "jax==0.4.34", "jaxlib==0.4.34", "scikit-learn"),
    check="import spu, spu.utils.simulation, jax, sklearn",
)

SPU_SCRIPT = r"""
import json, sys, time
import numpy as np
import jax, jax.numpy as jnp
import spu
import spu.utils.simulation as spsim
from sklearn.metrics import roc_auc_score

data = np.load(sys.argv[1])
protocol, epochs, batch, lr = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
x_w, x_n, y, xt, yt = data["x_wallet"], data["x_network"], data["y"], data["x_test"], data["y_test"]
steps = len(y) // batch

def train(x_w, x_n, y):
    x = jnp.concatenate([x_w, x_n], axis=1)
    def step(i, w):
        xb = jax.lax.dynamic_slice_in_dim(x, i * batch, batch)
        yb = jax.lax.dynamic_slice_in_dim(y, i * batch, batch)
        return w - lr * (xb.T @ (jax.nn.sigmoid(xb @ w) - yb) / batch)
    return jax.lax.fori_loop(0, epochs, lambda _, w: jax.lax.fori_loop(0, steps, step, w),
                             jnp.zeros((x.shape[1],)))

kind = {"SEMI2K": spu.ProtocolKind.SEMI2K, "CHEETAH": spu.ProtocolKind.CHEETAH}[protocol]
sim = spsim.Simulator.simple(2, kind, spu.FieldType.FM64)
started = time.perf_counter()
w = spsim.sim_jax(sim, train)(x_w, x_n, y)
seconds = time.perf_counter() - started
auc = float(roc_auc_score(yt, xt @ np.asarray(w)))
print(json.dumps({"protocol": protocol, "seconds": seconds, "auc": auc,
                  "rows": int(len(y)), "features": int(x_w.shape[1] + x_n.shape[1]), "epochs": epochs,
                  "batches_per_epoch": steps}))
"""


# --- party programs (module level: they are pickled into the party processes) ---------------


def train_program(party: Party, job: dict[str, Any]) -> dict[str, Any]:
    program_started = time.monotonic()  # CLOCK_MONOTONIC: the launcher's clock too (same machine)
    started = time.perf_counter()
    if "synthetic" in job:
        own, labels = synthetic_block(party.party, **job["synthetic"])
    else:
        own, labels = job["features"], job["labels"]
    generated = time.perf_counter()
    # Both sources multiply with each party's clear block (masked once, or by OT): no shared X.
    y = SharedTensor.from_owner(
        party, 0, labels[:, None] if party.party == 0 else None, (own.shape[0], 1), "label"
    )
    shared_at = time.perf_counter()
    # When n steps are done: (monotonic time, bytes sent, rounds, this process's CPU seconds).
    steps: list[tuple[float, int, int, float]] = []

    def step_done(_: int) -> None:
        so_far = party.total()
        steps.append((time.monotonic(), so_far.bytes_sent, so_far.rounds, time.process_time()))

    weights = train_shared(party, None, y, job["config"], own=(own, job["widths"]), steps_done=step_done)
    trained_at = time.perf_counter()
    total = party.total()
    return {
        "weights": weights.reveal(),
        "monotonic_started": program_started,
        "steps": steps,
        "seconds": trained_at - shared_at,
        "seconds_data": generated - started,
        "seconds_sharing": shared_at - generated,
        "bytes_sent": total.bytes_sent,
        "rounds": total.rounds,
        "by_op": {
            name: {"rounds": c.rounds, "bytes_sent": c.bytes_sent, "seconds": round(c.seconds, 3)}
            for name, c in party.costs.items()
        },
    }


def synthetic_block(
    party: int, rows: int, widths: tuple[int, int], seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each party draws its own columns; the label follows a fixed logistic model (wallet side)."""
    generator = np.random.default_rng(seed + party)
    own = generator.normal(size=(rows, widths[party])).astype(np.float64)
    if party == 0:
        own[:, -1] = 1.0
    if party != 0:
        return own, np.zeros(0)
    # The wallet cannot see the network's columns; the label depends on its own columns and noise.
    logits = own[:, :-1] @ np.linspace(-1, 1, widths[0] - 1) + generator.normal(size=rows)
    return own, (logits > 0).astype(np.float64)


def latency_program(party: Party, job: dict[str, Any]) -> dict[str, Any] | None:
    widths, count = job["widths"], job["count"]
    generator = np.random.default_rng(party.party)
    weights = SharedTensor(
        party.shared_prg.uint64((sum(widths), 1)) >> np.uint64(44), party
    )  # some small model
    row = generator.normal(size=(1, widths[party.party]))
    times = []
    for _ in range(count):
        started = time.perf_counter()
        blocks = [
            SharedTensor.from_owner(party, owner, row if owner == party.party else None, (1, widths[owner]))
            for owner in (0, 1)
        ]
        features = SharedTensor(np.hstack([b.share for b in blocks]), party)
        features.matmul_raw(weights).reveal(to=0, bits=2 * party.fixed.frac_bits)
        times.append(time.perf_counter() - started)
    if party.party != 0:
        return None
    milliseconds = np.array(times[10:]) * 1000
    return {
        "count": len(milliseconds),
        "p50_ms": float(np.percentile(milliseconds, 50)),
        "p99_ms": float(np.percentile(milliseconds, 99)),
        "rounds_per_row": 1,
    }


# --- the runs --------------------------------------------------------------------------------


def bank_arrays(epochs_dir: Path) -> dict[str, np.ndarray]:
    wallet, network = split_bank_marketing(BANK, epochs_dir, drop_every=10**9)
    features, labels, _, bias_at = joined_plaintext(
        read_table(wallet, "customer_id", "term deposit"), read_table(network, "customer_id")
    )
    train, test = split_rows([""] * len(labels))
    return {
        "x_wallet": features[train, : bias_at + 1],
        "x_network": features[train, bias_at + 1 :],
        "y": labels[train],
        "x_test": features[test],
        "y_test": labels[test],
    }


def ours_bank(data: dict[str, np.ndarray], config: TrainConfig, mode: str) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    widths = (data["x_wallet"].shape[1], data["x_network"].shape[1])
    jobs = (
        {"features": data["x_wallet"], "labels": data["y"], "widths": widths, "config": config},
        {"features": data["x_network"], "labels": None, "widths": widths, "config": config},
    )
    started = time.perf_counter()
    wallet, _ = run_processes(train_program, jobs, triples=mode, timeout=600)
    return {
        "mode": mode,
        "seconds_training": wallet["seconds"],
        "seconds_with_startup": time.perf_counter() - started,
        "auc": float(roc_auc_score(data["y_test"], data["x_test"] @ wallet["weights"][:, 0])),
        "bytes_sent_party0": wallet["bytes_sent"],
        "rounds": wallet["rounds"],
        "by_op": wallet["by_op"],
        "rows": len(data["y"]),
        "features": int(sum(widths)),
        "epochs": config.epochs,
        "momentum": config.momentum,
        "sigmoid": config.sigmoid,
        "plaintext_same_algorithm_max_weight_gap": float(
            np.abs(
                wallet["weights"][:, 0]
                - train_plaintext(np.hstack([data["x_wallet"], data["x_network"]]), data["y"], config)
            ).max()
        ),
    }


def ours_synthetic(rows: int, columns: int, config: TrainConfig, mode: str) -> dict[str, Any]:
    """SS-LR on a synthetic rows x columns set; each party generates its own block in its process.

    With ``config.max_steps`` below the run's step count only the first steps run, after the
    same set-up as a whole run; ``step_figures`` then extrapolates to the whole run.
    """
    widths = (columns // 2 + 1, columns - columns // 2)  # the wallet's block includes the bias column
    job = {
        "synthetic": {"rows": rows, "widths": widths, "seed": 11},
        "widths": widths,
        "config": config,
    }
    dealer: dict[str, float] = {}
    launched, started = time.monotonic(), time.perf_counter()
    wallet, network = run_processes(train_program, (job, job), triples=mode, timeout=600, dealer_stats=dealer)
    finished = time.monotonic()
    steps = len(wallet["steps"]) - 1
    setup = wallet["by_op"].get("setup", {}).get("seconds", 0.0)
    return {
        "mode": mode,
        "rows": rows,
        "features": columns,
        "epochs": config.epochs,
        "sigmoid": config.sigmoid,
        "steps": steps,
        "seconds_training": wallet["seconds"],
        "seconds_with_startup": time.perf_counter() - started,
        "seconds_data_generation": wallet["seconds_data"],
        "seconds_input_sharing": wallet["seconds_sharing"],
        "ms_per_step": 1000 * (wallet["seconds"] - setup) / steps,
        "bytes_sent_party0": wallet["bytes_sent"],
        "bytes_sent_party1": network["bytes_sent"],
        "rounds": wallet["rounds"],
        "rounds_per_step": wallet["rounds"] / steps,
        "by_op": wallet["by_op"],
        "dealer": dealer,
        **step_figures(wallet, network, launched, finished, rows, config),
    }


def step_figures(
    wallet: dict[str, Any],
    network: dict[str, Any],
    launched: float,
    finished: float,
    rows: int,
    config: TrainConfig,
) -> dict[str, Any]:
    """Set-up, per-step and wrap-up figures of one run, and the whole run they imply.

    Set-up is everything before the first step (key generation, process start, TLS, data
    generation, input sharing, masking), timed from the launch to party 0's first step;
    wrap-up is everything after its last step (dealer-free: the weights' range check; the
    reveal, the processes' exit). Steps are timed at party 0. The whole run is set-up +
    steps x mean seconds a step + wrap-up: a step costs the same whatever its position,
    as each touches only its batch's rows (the last batch of an epoch is smaller).
    """
    times = np.array([record[0] for record in wallet["steps"]])
    measured = len(times) - 1
    full = config.epochs * -(-rows // config.batch_size)
    per_step = np.diff(times)
    setup_s = float(times[0] - launched)
    wrap_up_s = float(finished - times[-1])

    def per_party(record: dict[str, Any]) -> dict[str, float]:
        (_, bytes0, rounds0, cpu0), (_, bytes1, rounds1, cpu1) = record["steps"][0], record["steps"][-1]
        return {
            "bytes_sent": (bytes1 - bytes0) / measured,
            "rounds": (rounds1 - rounds0) / measured,
            "cpu_seconds": (cpu1 - cpu0) / measured,  # the load moves this far less than wall time
        }

    whole = setup_s + float(per_step.mean()) * full + wrap_up_s
    kind = "extrapolated" if measured < full else "measured"
    return {
        "setup_seconds": {
            "total": setup_s,
            "launch_to_program": float(wallet["monotonic_started"] - launched),
            "data_generation": wallet["seconds_data"],
            "input_sharing": wallet["seconds_sharing"],
            # the training's "setup" op: X - A sent once (dealer), the block's encoding (dealer-free)
            "masking_or_encoding": wallet["by_op"].get("setup", {}).get("seconds", 0.0),
        },
        "measured_steps": measured,
        "steps_of_the_whole_run": full,
        "seconds_per_step": {
            "median": float(np.median(per_step)),
            "mean": float(per_step.mean()),
            "p90": float(np.percentile(per_step, 90)),
            "total": float(per_step.sum()),
            # drift over the run (load, or a cost that grows with the step): mean of each tenth
            "mean_by_tenth": [float(tenth.mean()) for tenth in np.array_split(per_step, 10) if len(tenth)],
        },
        "per_step_per_party": {"party0": per_party(wallet), "party1": per_party(network)},
        "wrap_up_seconds": wrap_up_s,
        "extrapolated": measured < full,
        f"{kind}_{config.epochs}_epochs_s": whole,
        # the same with the median step: a load spike within a short window moves it less
        f"extrapolated_by_median_{config.epochs}_epochs_s": setup_s
        + float(np.median(per_step)) * full
        + wrap_up_s,
        "how": f"set-up + {measured} measured steps' mean x {full} steps + wrap-up"
        + (f"; {measured} of {full} steps measured" if measured < full else "; every step measured"),
    }


def spu_train(
    data: dict[str, np.ndarray], protocol: str, config: TrainConfig, scratch: Path
) -> dict[str, Any]:
    python, problem = ensure(SPU_LR)
    if python is None:
        return {"protocol": protocol, "error": problem}
    arrays, script = scratch / "bank.npz", scratch / "spu_lr.py"
    np.savez(arrays, **data)
    script.write_text(SPU_SCRIPT)
    done = subprocess.run(
        [
            str(python),
            str(script),
            str(arrays),
            protocol,
            str(config.epochs),
            str(config.batch_size),
            str(config.learning_rate),
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        return {"protocol": protocol, "error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def spu_synthetic(
    rows: int,
    columns: int,
    protocols: list[str],
    config: TrainConfig,
    steps: tuple[int, ...],
    scratch: Path,
) -> list[dict[str, Any]]:
    """SPU on the first rows of the synthetic set, timed at two step counts and extrapolated.

    A whole run at rows x columns takes SPU hours under CHEETAH here, so it trains one epoch on
    the first s x batch rows for each s in ``steps``: the difference of the two times is s2 - s1
    steps' cost (compilation and start-up cancel), and the whole run is the shorter run's
    fixed part plus that cost per step times the epochs' steps. The set is made once for all
    ``protocols``.
    """
    widths = (columns // 2 + 1, columns - columns // 2)
    (wallet, labels), (network, _) = (synthetic_block(party, rows, widths, 11) for party in (0, 1))
    test = slice(rows - min(rows // 10, 100_000), rows)  # for SPU's AUC only: the last rows
    prefixes = [
        {
            "x_wallet": wallet[: count * config.batch_size],
            "x_network": network[: count * config.batch_size],
            "y": labels[: count * config.batch_size],
            "x_test": np.hstack([wallet[test], network[test]]),
            "y_test": labels[test],
        }
        for count in steps
    ]
    one_epoch = TrainConfig(1, config.batch_size, config.learning_rate)
    full = config.epochs * -(-rows // config.batch_size)
    reports = []
    for protocol in protocols:
        runs = [spu_train(data, protocol, one_epoch, scratch) for data in prefixes]
        if any("seconds" not in run for run in runs):
            error = next(run.get("error") for run in runs if "seconds" not in run)
            reports.append({"protocol": protocol, "rows": rows, "features": columns, "error": error})
            continue
        (s1, s2), (t1, t2) = steps, [run["seconds"] for run in runs]
        per_step = (t2 - t1) / (s2 - s1)
        reports.append(
            {
                "protocol": protocol,
                "rows": rows,
                "features": columns,
                "epochs": config.epochs,
                "measured": {f"{s}_steps_s": t for s, t in zip(steps, (t1, t2), strict=True)},
                "seconds_per_step": per_step,
                "fixed_seconds": t1 - s1 * per_step,
                "steps_of_the_whole_run": full,
                "extrapolated": True,
                f"extrapolated_{config.epochs}_epochs_s": t1 - s1 * per_step + per_step * full,
                "how": f"one epoch on the first {s1} and {s2} batches; (t2 - t1) / {s2 - s1} a step",
            }
        )
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--modes", default="dealer,dealer-free")
    parser.add_argument(
        "--dealer-free-epochs", type=int, help="fewer epochs for the slower mode (default: --epochs)"
    )
    parser.add_argument(
        "--sigmoid",
        default="polynomial",
        help="sigmoid of the dealer mode: polynomial (default, as the dealer-free mode; SPU's own"
        " sigmoid is an approximation too) or clipped (exact comparisons, ~1.7x slower here)",
    )
    parser.add_argument(
        "--dealer-free-sigmoid",
        default="polynomial",
        help="sigmoid of the dealer-free mode (default polynomial: no comparisons, see pets.mpc.tensor)",
    )
    parser.add_argument("--spu", default="SEMI2K,CHEETAH", help="SPU protocols to run ('' for none)")
    parser.add_argument(
        "--parts", default="bank,synthetic,latency", help="which runs: any of bank, synthetic, latency"
    )
    parser.add_argument("--synthetic-rows", type=int, default=1_000_000)
    parser.add_argument("--synthetic-cols", type=int, default=100)
    parser.add_argument("--synthetic-modes", default="dealer")
    parser.add_argument(
        "--synthetic-epochs", type=int, help="epochs of the synthetic runs (default: --epochs)"
    )
    parser.add_argument(
        "--synthetic-steps",
        type=int,
        help="run only the first N mini-batch steps of the synthetic runs, after the whole set-up,"
        " and extrapolate to all steps of the epochs (default: every step)",
    )
    parser.add_argument(
        "--spu-synthetic-steps",
        default="",
        help="S1,S2: also time SPU (--spu's protocols) on the synthetic set's first S1 and S2"
        " batches and extrapolate to the synthetic runs' epochs (default: no SPU there)",
    )
    parser.add_argument("--latency-rows", type=int, default=1000)
    args = parser.parse_args()
    if args.synthetic_steps is not None and args.synthetic_steps < 1:
        parser.error("--synthetic-steps must be a positive number of steps")
    spu_steps = tuple(int(n) for n in args.spu_synthetic_steps.split(",") if n.strip().isdigit())
    if args.spu_synthetic_steps and (len(spu_steps) != 2 or not 0 < spu_steps[0] < spu_steps[1]):
        parser.error("--spu-synthetic-steps takes two step counts S1,S2 with 0 < S1 < S2")
    parts = set(args.parts.split(","))
    modes = [m for m in args.modes.split(",") if m]
    plain = TrainConfig(
        epochs=args.epochs, batch_size=1024, learning_rate=0.1, momentum=0.0, sigmoid=args.sigmoid
    )
    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}, "config": vars(plain)}
    with tempfile.TemporaryDirectory(prefix="mpc-lr-") as scratch_dir:
        scratch = Path(scratch_dir)
        if "bank" not in parts:
            pass
        elif BANK.exists():
            data = bank_arrays(scratch / "bank")
            free = TrainConfig(
                args.dealer_free_epochs or args.epochs, 1024, 0.1, 0.0, args.dealer_free_sigmoid
            )
            report["bank"] = {
                "ours": [ours_bank(data, free if mode == "dealer-free" else plain, mode) for mode in modes]
            }
            report["bank"]["ours_momentum_0.9"] = ours_bank(
                data, TrainConfig(args.epochs, 1024, 0.1, 0.9), "dealer"
            )
            report["bank"]["spu"] = [spu_train(data, p, plain, scratch) for p in args.spu.split(",") if p]
            by_mode = {run["mode"]: run for run in report["bank"]["ours"]}
            by_protocol = {run["protocol"]: run for run in report["bank"]["spu"] if "seconds" in run}
            for mode, protocol in (("dealer", "SEMI2K"), ("dealer-free", "CHEETAH")):
                if mode in by_mode and protocol in by_protocol:
                    report["bank"][f"speedup_{mode}_vs_spu_{protocol}"] = (
                        by_protocol[protocol]["seconds"] / by_mode[mode]["seconds_training"]
                    )
        else:
            report["bank"] = {"skipped": f"{BANK} is absent"}
        if "synthetic" in parts and args.synthetic_rows > 0:
            report["synthetic"] = []
            for mode in (m for m in args.synthetic_modes.split(",") if m):
                sigmoid = args.dealer_free_sigmoid if mode == "dealer-free" else args.sigmoid
                config = TrainConfig(
                    args.synthetic_epochs or args.epochs, 1024, 0.1, 0.0, sigmoid, args.synthetic_steps
                )
                report["synthetic"].append(
                    ours_synthetic(args.synthetic_rows, args.synthetic_cols, config, mode)
                )
        if "synthetic" in parts and spu_steps:
            config = TrainConfig(args.synthetic_epochs or args.epochs, 1024, 0.1)
            report["synthetic_spu"] = spu_synthetic(
                args.synthetic_rows,
                args.synthetic_cols,
                [p for p in args.spu.split(",") if p],
                config,
                spu_steps,
                scratch,
            )
        if "latency" in parts:
            widths = (29, 23)
            latency, _ = run_processes(latency_program, ({"widths": widths, "count": args.latency_rows},) * 2)
            report["single_row_latency"] = {
                **latency,
                "features": sum(widths),
                "transport": "TLS 1.3 on loopback",
            }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
