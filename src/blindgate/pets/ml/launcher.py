"""One-command training: the wallet, the network and the dealer as three local processes.

The launcher holds both CSVs (it is the "first try" on one machine), so after the
parties finish it also computes the plaintext baselines on the joined data: scikit-learn
(lbfgs, to convergence) and the float64 run of the same algorithm, and adds them to
metrics.json. The parties themselves never see each other's data.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.net import Identity, free_port
from blindgate.pets.feedback import Feedback, PartyBars
from blindgate.pets.ml.data import ColumnChoice, Table, encode, fit_encoding, read_table, subset_rows
from blindgate.pets.ml.errors import SettingsError
from blindgate.pets.ml.joint import ROLES, split_key, split_rows, write_json, write_training_report
from blindgate.pets.ml.logreg import TrainConfig, train_plaintext
from blindgate.pets.ml.options import column_choice, id_rules, output_policy, passed_on
from blindgate.processes import ChildSpec, ProcessGroup

FAILURE_GRACE_S = 5.0


def run_local(args: argparse.Namespace) -> int:
    if not (args.wallet_data and args.network_data and args.id_column and args.label and args.out):
        raise SettingsError("one-command mode needs --wallet-data, --network-data, --id, --label and --out")
    if getattr(args, "model", "logreg") == "gbdt":
        from blindgate.pets.ml.gbdt.flow import check_tree_policy, clear_outputs

        _tree_config(args)  # out-of-range hyper-parameters fail here, before any process starts
        check_tree_policy(output_policy(args))  # and a policy the trees cannot honour
        for role in ("wallet", "network"):  # a failed run must leave no model file behind
            clear_outputs(args.out, role)
    # Check inputs here first, so a bad file fails fast with the parties never started.
    wallet = _read(args, args.wallet_data, args.id_column, args.label)
    network = _read(args, args.network_data, args.network_id or args.id_column, None)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "metrics.json").unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="blindgate-train-") as scratch:
        keys = Path(scratch)
        make_identities(keys)
        code = _run_parties(args, keys)
    if code != 0:
        return code
    if getattr(args, "model", "logreg") == "gbdt":
        from blindgate.pets.ml.gbdt.baseline import add_tree_baselines

        add_tree_baselines(args.out, wallet, network, _tree_config(args))
    else:
        _add_baselines(args, wallet, network)
    return 0


def _tree_config(args: argparse.Namespace) -> Any:
    from blindgate.pets.ml.train_command import tree_config

    return tree_config(args)


def _tree_options(args: argparse.Namespace) -> list[str]:
    """The tree hyper-parameters, passed on to both parties alike."""
    options = ["--model", "gbdt"]
    names = ("trees", "depth", "bins", "min_child_weight", "l2", "gamma", "subsample", "colsample")
    for name in (*names, "early_stopping", "validation_fraction", "seed"):
        options += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return options


def _read(args: argparse.Namespace, path: Path, id_column: str, label: str | None) -> Table:
    rules, region = id_rules(args)
    return read_table(
        path,
        id_column,
        label,
        rules=rules,
        region=region,
        columns=column_choice(args),
        encoding=args.encoding,
    )


def _run_parties(args: argparse.Namespace, keys: Path) -> int:
    common = ["--id", args.id_column, "--out", str(args.out), "--epochs", str(args.epochs)]
    common += ["--batch-size", str(args.batch_size), "--learning-rate", str(args.learning_rate)]
    common += [
        "--momentum",
        str(args.momentum),
        "--sigmoid",
        args.sigmoid,
        "--frac-bits",
        str(args.frac_bits),
    ]
    common += ["--triples", args.triples, "--timeout", str(args.timeout), *passed_on(args)]
    trees = getattr(args, "model", "logreg") == "gbdt"
    if trees:
        common += _tree_options(args)
    own = {
        "wallet": ["--data", str(args.wallet_data), "--label", args.label],
        "network": ["--data", str(args.network_data)],
    }
    use_dealer = args.triples == "dealer" and not trees  # SecureBoost needs no dealer
    commands = party_commands(args, keys, own, common, use_dealer, ["--out", str(args.out)])
    return supervise("train", commands, args)


def make_identities(keys: Path) -> None:
    """A fresh TLS identity for each party of a one-command run (they live as long as the run)."""
    for name in (*ROLES, "dealer"):
        Identity.generate(name).save(keys / name)


def party_commands(
    args: argparse.Namespace,
    keys: Path,
    own: dict[str, list[str]],
    common: list[str],
    use_dealer: bool,
    dealer_own: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Each party's `blindgate` arguments in a one-command run: ``own[role]`` and ``common``,
    and where they meet on loopback: the wallet listens for the network, each pins the
    other's certificate from ``keys`` and, ``use_dealer``, both connect to the dealer."""
    dealer_at, peer_at = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"

    def cert(name: str) -> str:
        return str(keys / name / "cert.pem")

    commands = {
        "wallet": ["--role", "wallet", *own["wallet"], "--listen", peer_at],
        "network": ["--role", "network", *own["network"], "--connect", peer_at],
    }
    for role, peer in (("wallet", "network"), ("network", "wallet")):
        commands[role] += ["--identity", str(keys / role), "--peer-cert", cert(peer), *common]
    commands["network"] += ["--id", args.network_id or args.id_column]
    if use_dealer:
        for role in ROLES:
            commands[role] += ["--dealer", dealer_at, "--dealer-cert", cert("dealer")]
        commands["dealer"] = ["--role", "dealer", "--listen", dealer_at, "--identity", str(keys / "dealer")]
        commands["dealer"] += ["--peer-cert", cert("wallet"), "--peer-cert", cert("network"), *dealer_own]
        commands["dealer"] += ["--timeout", str(args.timeout)]
    return commands


def supervise(command: str, commands: dict[str, list[str]], args: argparse.Namespace) -> int:
    """Run one `blindgate <command>` process per party and return the most telling exit code.

    The parties run with ``--json`` under one `ProcessGroup`; their progress is drawn here,
    one bar per party, so lines never interleave, and their closing summaries are printed (or
    passed on with ``--json``) once all are done. When one party fails the others usually
    fail a moment later (the channel drops); they get a short grace period so that a data
    error at one party (exit 2) is what is reported, not the peer failure (exit 3) it causes
    at the others.
    """
    bars = PartyBars(enabled=not (args.quiet or args.json))

    def on_line(party: str, line: str) -> None:
        if args.json:
            print(line, flush=True)
        bars.feed(party, line)

    try:
        with ProcessGroup(on_line=on_line) as parties:
            for name, argv in commands.items():
                argv = [sys.executable, "-m", "blindgate.cli", command, *argv, "--json"]
                parties.start(ChildSpec(name, argv))
            # No overall bound: every party bounds each of its own waits (--timeout).
            codes = parties.wait(timeout_s=None, failure_grace_s=FAILURE_GRACE_S)
        failed = [name for name, code in codes.items() if code not in (None, 0)]
        if failed:
            message = f"blindgate {command}: the {failed[0]} process failed; stopping the others"
            print(message, file=sys.stderr)
            return _worst(codes)
        bars.close()
        _print_summaries(command, bars, args)
        return 0
    finally:
        bars.close()


def _print_summaries(command: str, bars: PartyBars, args: argparse.Namespace) -> None:
    if args.json or args.quiet:
        return
    for party, summary in bars.summaries.items():
        Feedback(command, party).summary(summary)


def _worst(codes: dict[str, int | None]) -> int:
    # A data error at one party shows as a peer failure at the others: report the data error.
    return min(code for code in codes.values() if code is not None and code != 0)


def joined_plaintext(
    wallet: Table, network: Table, args: argparse.Namespace | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Joined, encoded rows in the parties' order: features (wallet, bias, network), labels, rows."""
    common = sorted(set(wallet.ids) & set(network.ids), key=split_key)
    w_at = {value: i for i, value in enumerate(wallet.ids)}
    n_at = {value: i for i, value in enumerate(network.ids)}
    w_rows = subset_rows(wallet, [w_at[value] for value in common])
    n_rows = subset_rows(network, [n_at[value] for value in common])
    choice = column_choice(args) if args is not None else ColumnChoice()
    w_features = encode(w_rows, fit_encoding(w_rows, choice))
    n_features = encode(n_rows, fit_encoding(n_rows, choice))
    features = np.hstack([w_features, np.ones((len(common), 1)), n_features])
    assert w_rows.labels is not None
    return features, w_rows.labels, np.arange(len(common)), w_features.shape[1]


def _add_baselines(args: argparse.Namespace, wallet: Table, network: Table) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score, roc_curve

    features, labels, _, bias_at = joined_plaintext(wallet, network, args)
    train, test = split_rows([""] * len(labels))
    without_bias = np.delete(features, bias_at, axis=1)
    started = time.perf_counter()
    reference = LogisticRegression(max_iter=10000).fit(without_bias[train], labels[train])
    sklearn_s = time.perf_counter() - started
    config = TrainConfig(args.epochs, args.batch_size, args.learning_rate, args.momentum, args.sigmoid)
    same_algorithm = train_plaintext(features[train], labels[train], config)
    metrics_path = args.out / "metrics.json"
    metrics: dict[str, Any] = json.loads(metrics_path.read_text())
    reference_scores = reference.decision_function(without_bias[test])
    metrics["plaintext_auc"] = float(roc_auc_score(labels[test], reference_scores))
    fpr, tpr, _ = roc_curve(labels[test], reference_scores)
    metrics["plaintext_seconds"] = sklearn_s
    from blindgate.pets.ml.evaluate import metrics as evaluation

    same = evaluation(features[test] @ same_algorithm, labels[test], ("auc", "ks", "lift"))
    metrics["plaintext_same_algorithm_auc"] = same["auc"]
    metrics["plaintext_same_algorithm_ks"] = same["ks"]
    metrics["plaintext_same_algorithm_lift"] = same["lift"]
    weights = _clear_weights(args.out)
    if weights is not None:
        gap = np.abs(weights - same_algorithm).max()
        metrics["weights_max_gap_vs_plaintext_same_algorithm"] = float(gap)
    view = json.loads((args.out / "view-wallet.json").read_text())
    reference_curve = {"auc": metrics["plaintext_auc"], "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()}}
    write_training_report(args.out / "report-wallet.html", metrics, view, reference_curve)
    write_json(metrics_path, metrics)


def _clear_weights(out: Path) -> np.ndarray | None:
    """The whole model in clear: from a party that holds it, or the two parties' own parts."""
    models = [json.loads((out / f"model-{role}.json").read_text()) for role in ("wallet", "network")]
    for model in models:
        if model.get("weights") is not None:
            return np.array(model["weights"])
    if all(model.get("own_weights") is not None for model in models):
        return np.concatenate([np.array(model["own_weights"]) for model in models])
    return None
