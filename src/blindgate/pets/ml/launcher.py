"""One-command training: the wallet, the network and the dealer as three local processes.

The launcher holds both CSVs (it is the "first try" on one machine), so after the
parties finish it also computes the plaintext baselines on the joined data: scikit-learn
(lbfgs, to convergence) and the float64 run of the same algorithm, and adds them to
metrics.json. The parties themselves never see each other's data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.net import Identity, free_port
from blindgate.pets.ml.data import Table, encode, fit_encoding, read_table
from blindgate.pets.ml.errors import SettingsError
from blindgate.pets.ml.joint import split_key, split_rows, subset_rows, write_json
from blindgate.pets.ml.logreg import TrainConfig, train_plaintext

POLL_S = 0.2
FAILURE_GRACE_S = 5.0


def run_local(args: argparse.Namespace) -> int:
    if not (args.wallet_data and args.network_data and args.id_column and args.label and args.out):
        raise SettingsError("one-command mode needs --wallet-data, --network-data, --id, --label and --out")
    # Check inputs here first, so a bad file fails fast with the parties never started.
    wallet = read_table(args.wallet_data, args.id_column, args.label)
    network = read_table(args.network_data, args.id_column)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="blindgate-train-") as scratch:
        keys = Path(scratch)
        for name in ("wallet", "network", "dealer"):
            Identity.generate(name).save(keys / name)
        code = _run_parties(args, keys)
    if code != 0:
        return code
    _add_baselines(args, wallet, network)
    return 0


def _run_parties(args: argparse.Namespace, keys: Path) -> int:
    dealer_at, peer_at = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    common = [
        "--id",
        args.id_column,
        "--out",
        str(args.out),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--learning-rate",
        str(args.learning_rate),
        "--momentum",
        str(args.momentum),
        "--sigmoid",
        args.sigmoid,
        "--frac-bits",
        str(args.frac_bits),
        "--reveal",
        args.reveal,
        "--triples",
        args.triples,
        "--align",
        args.align,
        "--timeout",
        str(args.timeout),
    ]
    dealer_args = ["--dealer", dealer_at, "--dealer-cert", str(keys / "dealer" / "cert.pem")]
    commands = {
        "wallet": [
            "--role",
            "wallet",
            "--data",
            str(args.wallet_data),
            "--label",
            args.label,
            "--listen",
            peer_at,
            "--identity",
            str(keys / "wallet"),
            "--peer-cert",
            str(keys / "network" / "cert.pem"),
            *common,
        ],
        "network": [
            "--role",
            "network",
            "--data",
            str(args.network_data),
            "--connect",
            peer_at,
            "--identity",
            str(keys / "network"),
            "--peer-cert",
            str(keys / "wallet" / "cert.pem"),
            *common,
        ],
    }
    if args.triples == "dealer":
        commands["wallet"] += dealer_args
        commands["network"] += dealer_args
        commands["dealer"] = [
            "--role",
            "dealer",
            "--listen",
            dealer_at,
            "--identity",
            str(keys / "dealer"),
            "--peer-cert",
            str(keys / "wallet" / "cert.pem"),
            "--peer-cert",
            str(keys / "network" / "cert.pem"),
            "--out",
            str(args.out),
            "--timeout",
            str(args.timeout),
        ]
    return supervise("train", commands)


def supervise(command: str, commands: dict[str, list[str]]) -> int:
    """Run one `blindgate <command>` process per party and return the most telling exit code.

    When one party fails the others usually fail a moment later (the channel drops);
    they get a short grace period so that a data error at one party (exit 2) is what is
    reported, not the peer failure (exit 3) it causes at the others.
    """
    processes = {
        name: subprocess.Popen([sys.executable, "-m", "blindgate.cli", command, *argv])
        for name, argv in commands.items()
    }
    try:
        while True:
            codes = {name: process.poll() for name, process in processes.items()}
            failed = [name for name, code in codes.items() if code not in (None, 0)]
            if failed:
                codes = _settle(processes, codes)
                print(
                    f"blindgate {command}: the {failed[0]} process failed; stopping the others",
                    file=sys.stderr,
                )
                return _worst(codes)
            if all(code == 0 for code in codes.values()):
                return 0
            time.sleep(POLL_S)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


def _settle(
    processes: dict[str, subprocess.Popen[bytes]], codes: dict[str, int | None]
) -> dict[str, int | None]:
    deadline = time.monotonic() + FAILURE_GRACE_S
    while any(code is None for code in codes.values()) and time.monotonic() < deadline:
        time.sleep(POLL_S)
        codes = {name: process.poll() for name, process in processes.items()}
    return codes


def _worst(codes: dict[str, int | None]) -> int:
    # A data error at one party shows as a peer failure at the others: report the data error.
    return min(code for code in codes.values() if code is not None and code != 0)


def joined_plaintext(wallet: Table, network: Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Joined, encoded rows in the parties' order: features (wallet, bias, network), labels, rows."""
    common = sorted(set(wallet.ids) & set(network.ids), key=split_key)
    w_at = {value: i for i, value in enumerate(wallet.ids)}
    n_at = {value: i for i, value in enumerate(network.ids)}
    w_rows = subset_rows(wallet, [w_at[value] for value in common])
    n_rows = subset_rows(network, [n_at[value] for value in common])
    w_features = encode(w_rows, fit_encoding(w_rows))
    features = np.hstack([w_features, np.ones((len(common), 1)), encode(n_rows, fit_encoding(n_rows))])
    assert w_rows.labels is not None
    return features, w_rows.labels, np.arange(len(common)), w_features.shape[1]


def _add_baselines(args: argparse.Namespace, wallet: Table, network: Table) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    features, labels, _, bias_at = joined_plaintext(wallet, network)
    train, test = split_rows([""] * len(labels))
    without_bias = np.delete(features, bias_at, axis=1)
    started = time.perf_counter()
    reference = LogisticRegression(max_iter=10000).fit(without_bias[train], labels[train])
    sklearn_s = time.perf_counter() - started
    config = TrainConfig(args.epochs, args.batch_size, args.learning_rate, args.momentum, args.sigmoid)
    same_algorithm = train_plaintext(features[train], labels[train], config)
    metrics_path = args.out / "metrics.json"
    metrics: dict[str, Any] = json.loads(metrics_path.read_text())
    metrics["plaintext_auc"] = float(
        roc_auc_score(labels[test], reference.decision_function(without_bias[test]))
    )
    metrics["plaintext_seconds"] = sklearn_s
    metrics["plaintext_same_algorithm_auc"] = float(
        roc_auc_score(labels[test], features[test] @ same_algorithm)
    )
    model = json.loads((args.out / "model-wallet.json").read_text())
    if model["weights"] is not None:
        gap = np.abs(np.array(model["weights"]) - same_algorithm).max()
        metrics["weights_max_gap_vs_plaintext_same_algorithm"] = float(gap)
    write_json(metrics_path, metrics)
