"""Joint gradient-boosted trees (SecureBoost on HEU): time and AUC against XGBoost and SecretFlow SGB.

Prints one JSON object. In the same run:
- ours: `blindgate train --model gbdt` in its one-command mode (wallet and network as two
  processes over pinned TLS on loopback, rows aligned by PSI first), on the bank data
  (50 trees, depth 5, learning rate 0.3, 32 bins) and on a synthetic set of the shape
  SecretFlow users report as slow (40,000 rows, 58 columns at the label holder, 21 at the
  other party, 10 trees of depth 5); training seconds exclude PSI (reported beside);
- plaintext XGBoost ``hist`` on the same joined rows and split, same hyper-parameters;
- the floor: the homomorphic operations our run did (encryptions, ciphertext additions,
  decryptions), priced at HEU's rates measured here and now;
- with ``--with-secretflow``: SecretFlow 1.14.0b0 SGB (OU-2048) in its production mode
  (one process per party, linked over loopback) on the same rows, in a Python 3.10 venv
  built on first use at benchmarks/.venv-secretflow; the JSON says why when it cannot run;
- secure prediction: a 100,000-row campaign batch (`blindgate predict`, PSI included, and the
  scoring step alone) and single-row latency (p50, p99) over loopback TLS.

Usage: .venv/bin/python benchmarks/gbdt.py [--with-secretflow] [--parts bank,synthetic,predict]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from blindgate.net import Identity, connect, listen
from blindgate.pets.ml.bank import ID, LABEL, split_bank_marketing
from blindgate.pets.ml.data import PrepReport, Table, read_table
from blindgate.pets.ml.gbdt.baseline import JoinedRows, join, xgboost_auc
from blindgate.pets.ml.gbdt.model import NetworkModel, WalletModel, load_model
from blindgate.pets.ml.gbdt.predict import RowScorer, serve_rows
from blindgate.pets.ml.gbdt.protocol import pack_bits, unpack_bits
from blindgate.pets.ml.gbdt.trees import GbdtConfig, sigmoid

HERE = Path(__file__).resolve().parent
BANK = HERE.parent.parent / "shared" / "data" / "bank-marketing.csv"
SF_VENV = HERE / ".venv-secretflow"
SF_PYTHON = Path.home() / ".pyenv" / "versions" / "3.10.13" / "bin" / "python"
SF_REQUIREMENTS = ["secretflow==1.14.0b0", "ray==2.42.0"]
SF_RECORDED = {"bank_seconds": 230.0, "bank_auc": 0.9326, "xgboost_auc": 0.9323, "trees": 50, "depth": 5}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# --- the homomorphic floor ---------------------------------------------------------------------


def he_rates(rows: int = 4000, columns: int = 8, buckets: int = 33) -> dict[str, float]:
    """HEU's OU-2048 rates on this machine now, for the operations the protocol uses: per
    second of wall time, and per second of CPU time (all threads; steadier under load)."""
    from blindgate.pets.ml.gbdt.he import PublicKeyHolder, SecretKeyHolder

    rng = np.random.default_rng(0)
    secret = SecretKeyHolder()
    grad, hess = rng.uniform(-1, 1, rows), rng.uniform(0, 0.25, rows)
    public = PublicKeyHolder(secret.public_key())
    public.start_rows()
    codes = rng.integers(0, buckets, size=(rows, columns)).astype(np.int8)
    clocks = {"": time.perf_counter, "_cpu": time.process_time}
    rates: dict[str, float] = {}
    for suffix, clock in clocks.items():
        started = clock()
        blob = secret.encrypt(grad, hess)
        rates[f"encrypt_per{suffix}_s"] = rows / (clock() - started)
        chunk = public.add_rows(blob, rows)
        started = clock()
        sums = public.bucket_sums(chunk, codes, [np.ones(rows, dtype=np.int8)], buckets)[0]
        rates[f"add_per{suffix}_s"] = rows * columns / (clock() - started)
        selected = PublicKeyHolder.select(sums, list(range(buckets * columns)))
        started = clock()
        secret.decrypt_sums(selected, buckets * columns)
        rates[f"decrypt_per{suffix}_s"] = buckets * columns / (clock() - started)
    return rates


def floor_seconds(metrics: dict[str, Any], rates: dict[str, float]) -> dict[str, Any]:
    """Our run's HE operations at the measured rates: wall seconds, and CPU seconds."""
    wallet, network = metrics["he"]["wallet"], metrics["he"]["network"]
    counts = {
        "encrypt": wallet["encryptions"],
        "add": network["additions"],
        "decrypt": wallet["decryptions"],
    }
    floor: dict[str, Any] = {"counts": counts}
    for suffix in ("", "_cpu"):
        parts = {f"{op}{suffix}_s": count / rates[f"{op}_per{suffix}_s"] for op, count in counts.items()}
        floor.update(parts)
        floor[f"total{suffix}_s"] = sum(parts.values())
    return floor


# --- data ------------------------------------------------------------------------------------


def make_table(ids: list[str], frame: pd.DataFrame, labels: np.ndarray | None) -> Table:
    return Table(
        ids, frame.reset_index(drop=True), labels, np.arange(2, len(ids) + 2), PrepReport("bench.csv")
    )


def synthetic_tables(
    rows: int, wallet_columns: int, network_columns: int, seed: int = 11
) -> tuple[Table, Table]:
    rng = np.random.default_rng(seed)
    wallet_x = rng.normal(size=(rows, wallet_columns))
    network_x = rng.normal(size=(rows, network_columns))
    logit = (
        wallet_x[:, :5] @ rng.normal(size=5) + network_x[:, :5] @ rng.normal(size=5) + np.sin(network_x[:, 5])
    )
    labels = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(float)
    ids = [f"s{i:07d}" for i in range(rows)]
    as_text = np.vectorize(lambda v: f"{v:.4f}", otypes=[object])
    wallet = pd.DataFrame(as_text(wallet_x), columns=[f"w{j}" for j in range(wallet_columns)])
    network = pd.DataFrame(as_text(network_x), columns=[f"n{j}" for j in range(network_columns)])
    return make_table(ids, wallet, labels), make_table(ids, network, None)


def write_csv(path: Path, table: Table) -> Path:
    frame = table.frame.copy()
    frame.insert(0, ID, table.ids)
    if table.labels is not None:
        frame[LABEL] = table.labels.astype(int)
    frame.to_csv(path, index=False)
    return path


# --- ours ------------------------------------------------------------------------------------


def train_ours(wallet_csv: Path, network_csv: Path, out: Path, config: GbdtConfig) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "blindgate.cli",
            "train",
            "--model",
            "gbdt",
            "--wallet-data",
            str(wallet_csv),
            "--network-data",
            str(network_csv),
            "--id",
            ID,
            "--label",
            LABEL,
            "--out",
            str(out),
            "--trees",
            str(config.trees),
            "--depth",
            str(config.depth),
            "--learning-rate",
            str(config.learning_rate),
            "--bins",
            str(config.bins),
            "--timeout",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=7200,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return {
        "train_seconds": metrics["seconds"]["train"],
        "align_seconds": metrics["seconds"]["align"],
        "wall_seconds_with_launch_psi_and_baselines": wall,
        "seconds_per_tree": metrics["seconds"]["train"] / max(1, metrics["trees"]),
        "cpu_seconds_both": metrics["seconds"]["cpu_train"]
        + metrics["network_seconds"].get("cpu_so_far", math.nan),
        "auc": metrics["auc"],
        "wallet_only_auc": metrics["wallet_only_auc"],
        "plaintext_same_algorithm_auc": metrics["plaintext_same_algorithm_auc"],
        "rows_train": metrics["rows_train"],
        "rows_test": metrics["rows_test"],
        "features": metrics["features"],
        "he": metrics["he"],
        "metrics": metrics,
    }


# --- SecretFlow --------------------------------------------------------------------------------


def secretflow_venv() -> str | None:
    """The venv's python, building it on first use; None (and why, printed) when impossible."""
    python = SF_VENV / "bin" / "python"
    if (SF_VENV / ".installed").exists():
        return str(python)
    if not SF_PYTHON.exists():
        print(f"gbdt benchmark: no Python 3.10 at {SF_PYTHON}", file=sys.stderr)
        return None
    steps = [
        [str(SF_PYTHON), "-m", "venv", str(SF_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *SF_REQUIREMENTS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            print(
                f"gbdt benchmark: building the SecretFlow venv failed: {done.stderr[-500:]}", file=sys.stderr
            )
            return None
    (SF_VENV / ".installed").touch()
    return str(python)


def write_secretflow_rows(rows: JoinedRows, folder: Path) -> None:
    values, _ = rows.raw()
    width = len(rows.wallet_binning.columns)
    for part, index in (("train", rows.train), ("test", rows.test)):
        alice = np.hstack([np.nan_to_num(values[index, :width], nan=-1.0), rows.labels[index, None]])
        bob = np.nan_to_num(values[index, width:], nan=-1.0)
        np.savetxt(
            folder / f"alice_{part}.csv",
            alice,
            delimiter=",",
            comments="",
            header=",".join([*(f"a{j}" for j in range(width)), "y"]),
            fmt="%.6g",
        )
        np.savetxt(
            folder / f"bob_{part}.csv",
            bob,
            delimiter=",",
            comments="",
            header=",".join(f"b{j}" for j in range(bob.shape[1])),
            fmt="%.6g",
        )


def train_secretflow(rows: JoinedRows, config: GbdtConfig, python: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="blindgate-sf-") as scratch:
        folder = Path(scratch)
        write_secretflow_rows(rows, folder)
        ports = [str(free_port()), str(free_port())]
        common = [
            "--ports",
            *ports,
            "--dir",
            str(folder),
            "--trees",
            str(config.trees),
            "--depth",
            str(config.depth),
            "--learning-rate",
            str(config.learning_rate),
            "--bins",
            str(config.bins),
        ]
        script = str(HERE / "gbdt_secretflow_party.py")
        started = time.perf_counter()
        bob_out = (folder / "bob.out").open("w")
        bob = subprocess.Popen(  # to a file, not a pipe: its logs must never block it
            [python, script, "--party", "bob", *common], stdout=bob_out, stderr=subprocess.DEVNULL
        )
        alice = subprocess.run(
            [python, script, "--party", "alice", *common], capture_output=True, text=True, timeout=7200
        )
        wall = time.perf_counter() - started
        try:
            bob.wait(60)
        except subprocess.TimeoutExpired:
            bob.kill()
        bob_out.close()
        lines = [line for line in alice.stdout.splitlines() if line.startswith('{"seconds"')]
        if alice.returncode != 0 or not lines:
            return {"error": (alice.stderr or "")[-1500:]}
        result: dict[str, Any] = json.loads(lines[-1])
        bob_lines = [
            line for line in (folder / "bob.out").read_text().splitlines() if '"cpu_seconds"' in line
        ]
        result["cpu_seconds_both"] = result["cpu_seconds"] + (
            json.loads(bob_lines[-1])["cpu_seconds"] if bob_lines else math.nan
        )
        result["wall_seconds_with_start"] = wall
        result["seconds_per_tree"] = result["seconds"] / config.trees
        return result


# --- prediction --------------------------------------------------------------------------------


def campaign_tables(wallet: Table, network: Table, rows: int) -> tuple[Table, Table]:
    """A campaign list of ``rows`` customers: the shared rows repeated under fresh ids."""
    shared = sorted(set(wallet.ids) & set(network.ids))
    w_at = {v: i for i, v in enumerate(wallet.ids)}
    n_at = {v: i for i, v in enumerate(network.ids)}
    picks = [shared[i % len(shared)] for i in range(rows)]
    ids = [f"k{i:07d}" for i in range(rows)]
    return (
        make_table(ids, wallet.frame.iloc[[w_at[p] for p in picks]], None),
        make_table(ids, network.frame.iloc[[n_at[p] for p in picks]], None),
    )


def predict_batch_command(model_dir: Path, wallet_csv: Path, network_csv: Path, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "blindgate.cli",
            "predict",
            "--model-dir",
            str(model_dir),
            "--wallet-data",
            str(wallet_csv),
            "--network-data",
            str(network_csv),
            "--id",
            ID,
            "--out",
            str(out),
            "--timeout",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        return {"error": done.stderr[-1500:]}
    return {
        "seconds_with_launch_and_psi": time.perf_counter() - started,
        # scores.csv lists every campaign row (line,id,score,status); the scored ones say so
        "rows_scored": sum(
            line.endswith(",scored") for line in (out / "scores.csv").read_text().splitlines()
        ),
    }


def scoring_step(
    wallet_model: WalletModel, network_model: NetworkModel, wallet: Table, network: Table
) -> dict[str, float]:
    """The scoring step alone on aligned rows: the network's bits, the wire format, the wallet's walk."""
    started = time.perf_counter()
    network_codes = network_model.binning.transform(network)
    packed = pack_bits(network_model.splits.bits(network_codes))
    network_s = time.perf_counter() - started
    started = time.perf_counter()
    bits = unpack_bits(packed, len(wallet.ids))
    scores = sigmoid(wallet_model.ensemble.margins(wallet_model.binning.transform(wallet), bits))
    wallet_s = time.perf_counter() - started
    assert np.isfinite(scores).all()
    return {"network_seconds": network_s, "wallet_seconds": wallet_s, "bits_bytes": int(packed.nbytes)}


def _serve(address: str, keys: Path, model_path: Path, network_csv: Path) -> None:
    identity = Identity.load(keys / "network")
    channel = listen(address, identity, (keys / "wallet" / "cert.pem").read_bytes(), 60, accept_timeout=60)
    model = load_model(model_path)
    assert isinstance(model, NetworkModel)
    serve_rows(channel, model, read_table(network_csv, ID))
    channel.close()


def _echo(address: str, keys: Path, reply_bytes: int) -> None:
    """The channel's floor: the same round trip (an id out, a reply of the same size back), no model."""
    identity = Identity.load(keys / "network")
    channel = listen(address, identity, (keys / "wallet" / "cert.pem").read_bytes(), 60, accept_timeout=60)
    reply = bytes(reply_bytes)
    while channel.recv():
        channel.send(reply)
    channel.close()


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def single_row_latency(model_dir: Path, wallet_csv: Path, network_csv: Path, queries: int) -> dict[str, Any]:
    """Scoring one customer at a time over loopback TLS, each query followed by a bare round trip
    of the same sizes on a second channel (an echo process): the floor this machine's scheduler
    and TLS give at the load of the moment, measured under the same conditions."""
    model = load_model(model_dir / "model-wallet.json")
    assert isinstance(model, WalletModel)
    reply_bytes = 1 + (len(model.ensemble.network_nodes()) + 7) // 8
    with tempfile.TemporaryDirectory(prefix="blindgate-rows-") as scratch:
        keys = Path(scratch)
        for name in ("wallet", "network"):
            Identity.generate(name).save(keys / name)
        addresses = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
        fork = multiprocessing.get_context("fork")
        server = fork.Process(
            target=_serve, args=(addresses[0], keys, model_dir / "model-network.json", network_csv)
        )
        echo = fork.Process(target=_echo, args=(addresses[1], keys, reply_bytes))
        server.start()
        echo.start()
        channel, echo_channel = (
            connect(
                address,
                Identity.load(keys / "wallet"),
                (keys / "network" / "cert.pem").read_bytes(),
                60,
                retry_for=60,
            )
            for address in addresses
        )
        wallet = read_table(wallet_csv, ID, LABEL)
        scorer = RowScorer(channel, model, wallet)
        shared = sorted(set(wallet.ids) & set(read_table(network_csv, ID).ids))
        rng = np.random.default_rng(1)
        times, floor = [], []
        load = os.getloadavg()[0]
        for identifier in rng.choice(shared, queries):
            started = time.perf_counter()
            score = scorer.score(str(identifier))
            times.append(time.perf_counter() - started)
            assert score is not None
            started = time.perf_counter()
            echo_channel.send(str(identifier).encode())
            echo_channel.recv()
            floor.append(time.perf_counter() - started)
        scorer.close()
        echo_channel.send(b"")
        channel.close()
        echo_channel.close()
        server.join(30)
        echo.join(30)
    return {
        "queries": queries,
        **_percentiles(times),
        "echo_floor": _percentiles(floor),
        "load_before_after": [load, os.getloadavg()[0]],
    }


# --- main --------------------------------------------------------------------------------------


def compare(
    csvs: tuple[Path, Path],
    run_dir: Path,
    config: GbdtConfig,
    sf_python: str | None,
    rates: dict[str, float],
    skip_ours: bool = False,
) -> dict[str, Any]:
    """Ours, XGBoost and (if its venv is there) SecretFlow on the same rows; ``skip_ours`` runs
    the references only (for a SecretFlow run beside an earlier one of ours, labelled so)."""
    wallet, network = read_table(csvs[0], ID, LABEL), read_table(csvs[1], ID)
    rows = join(wallet, network, config)
    result: dict[str, Any] = {"config": config.to_json()}
    result["ours"] = {"skipped": True} if skip_ours else train_ours(*csvs, run_dir, config)
    result["xgboost_auc"], result["xgboost_seconds"] = xgboost_auc(rows, config)
    if "train_seconds" in result["ours"]:
        result["floor"] = floor_seconds(result["ours"].pop("metrics"), rates)
    result["secretflow"] = _secretflow(rows, config, sf_python)
    _ratios(result)
    return result


def bank_part(
    folder: Path, config: GbdtConfig, sf_python: str | None, rates: dict[str, float], skip_ours: bool = False
) -> dict[str, Any]:
    csvs = split_bank_marketing(BANK, folder / "bank")
    return compare(csvs, folder / "bank-run", config, sf_python, rates, skip_ours)


def synthetic_part(
    folder: Path, config: GbdtConfig, sf_python: str | None, rates: dict[str, float], rows_count: int
) -> dict[str, Any]:
    wallet, network = synthetic_tables(rows_count, 58, 21)
    csvs = write_csv(folder / "syn-wallet.csv", wallet), write_csv(folder / "syn-network.csv", network)
    result = compare(csvs, folder / "syn-run", config, sf_python, rates)
    return {"rows": rows_count, "columns": {"wallet": 58, "network": 21}, **result}


def _secretflow(rows: JoinedRows, config: GbdtConfig, python: str | None) -> dict[str, Any]:
    if python is None:
        return {
            "ran": False,
            "why": "no SecretFlow venv (pass --with-secretflow to build and run it)",
            "recorded_not_this_run": SF_RECORDED,
        }
    result = train_secretflow(rows, config, python)
    result["ran"] = "error" not in result
    return result


def _ratios(result: dict[str, Any]) -> None:
    ours, sf = result["ours"], result["secretflow"]
    if "train_seconds" in ours and sf.get("ran"):
        result["secretflow_over_ours_seconds"] = sf["seconds"] / ours["train_seconds"]
        result["secretflow_over_ours_cpu_seconds"] = sf["cpu_seconds_both"] / ours["cpu_seconds_both"]
        result["auc_gap_vs_secretflow"] = ours["auc"] - sf["auc"]
    if "train_seconds" in ours:
        result["auc_gap_vs_xgboost"] = ours["auc"] - result["xgboost_auc"]
        if "floor" in result:
            result["ours_over_floor"] = ours["train_seconds"] / result["floor"]["total_s"]
            result["ours_over_floor_cpu"] = ours["cpu_seconds_both"] / result["floor"]["total_cpu_s"]


def predict_part(folder: Path, rows_count: int, queries: int) -> dict[str, Any]:
    model_dir = folder / "bank-run"
    if not (model_dir / "metrics.json").exists():
        return {"error": "needs the bank part's model (run --parts bank,predict)"}
    wallet = read_table(folder / "bank" / "wallet.csv", ID, LABEL)
    network = read_table(folder / "bank" / "network.csv", ID)
    campaign_w, campaign_n = campaign_tables(wallet, network, rows_count)
    w_csv, n_csv = (
        write_csv(folder / "campaign-w.csv", campaign_w),
        write_csv(folder / "campaign-n.csv", campaign_n),
    )
    wallet_model, network_model = (
        load_model(model_dir / "model-wallet.json"),
        load_model(model_dir / "model-network.json"),
    )
    assert isinstance(wallet_model, WalletModel) and isinstance(network_model, NetworkModel)
    return {
        "batch_rows": rows_count,
        "batch_command": predict_batch_command(model_dir, w_csv, n_csv, folder / "campaign-scores"),
        "batch_scoring_step": scoring_step(wallet_model, network_model, campaign_w, campaign_n),
        "single_row": single_row_latency(
            model_dir, folder / "bank" / "wallet.csv", folder / "bank" / "network.csv", queries
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="bank,synthetic,predict")
    parser.add_argument(
        "--with-secretflow", action="store_true", help="build (first use) and run SecretFlow SGB"
    )
    parser.add_argument("--bank-trees", type=int, default=50)
    parser.add_argument("--synthetic-rows", type=int, default=40_000)
    parser.add_argument("--synthetic-trees", type=int, default=10)
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    parser.add_argument("--skip-ours", action="store_true", help="bank part: the references only")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    sf_python = secretflow_venv() if args.with_secretflow else None
    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "he": "HEU OU-2048 (sf-heu 0.5.2b0)",
        "secretflow_venv": sf_python is not None,
    }
    # HEU's C++ logger writes to file descriptor 1: keep stdout for the JSON alone.
    json_out = os.dup(1)
    os.dup2(2, 1)
    folder = Path(tempfile.mkdtemp(prefix="blindgate-gbdt-bench-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    try:
        report["he_rates"] = rates = he_rates()
        if "bank" in parts:
            report["bank"] = bank_part(
                folder,
                GbdtConfig(trees=args.bank_trees, depth=5, learning_rate=0.3, bins=32),
                sf_python,
                rates,
                args.skip_ours,
            )
        if "synthetic" in parts:
            report["synthetic"] = synthetic_part(
                folder,
                GbdtConfig(trees=args.synthetic_trees, depth=5, learning_rate=0.3, bins=32),
                sf_python,
                rates,
                args.synthetic_rows,
            )
        if "predict" in parts:
            report["predict"] = predict_part(folder, args.batch_rows, args.queries)
        report["machine"]["load_after"] = os.getloadavg()
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.flush()
    os.dup2(json_out, 1)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
