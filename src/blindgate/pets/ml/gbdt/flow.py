"""The tree-training flow one party runs: agree, align, bin, boost, evaluate, report.

The same run directory as the logistic regression (:mod:`blindgate.pets.ml.joint`):
``model-<role>.json`` and ``view-<role>.json`` from each party, then ``metrics.json``
(with the ROC curve's points) from the wallet (last: its presence means the run completed) and
``costs-network.json`` from the network. Nothing is written before training ends, and a
party first removes the files a previous run left under these names, so a failed run
leaves no model file that looks complete.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.files import write_json
from blindgate.pets.ml.data import Table, subset_rows
from blindgate.pets.ml.errors import DataError, MlPeerError, SettingsError
from blindgate.pets.ml.gbdt.binning import Binning, fit_binning
from blindgate.pets.ml.gbdt.he import PublicKeyHolder, SecretKeyHolder
from blindgate.pets.ml.gbdt.model import NetworkModel, WalletModel
from blindgate.pets.ml.gbdt.protocol import NetworkServer, RemoteFeatures, agree
from blindgate.pets.ml.gbdt.trees import (
    Ensemble,
    GbdtConfig,
    LocalFeatures,
    Tree,
    base_margin,
    boost,
    check_labels,
    log_loss,
    train_plaintext,
)
from blindgate.pets.ml.joint import MIN_ROWS, align_over, split_rows
from blindgate.pets.ml.policy import METRICS, OutputPolicy
from blindgate.pets.view import Seen, View


@dataclass
class GbdtResult:
    role: str
    model: dict[str, Any]
    view: dict[str, Any]
    metrics: dict[str, Any]


def output_names(role: str) -> list[str]:
    names = [f"model-{role}.json", f"view-{role}.json"]
    return [*names, "metrics.json"] if role == "wallet" else [*names, "costs-network.json"]


def clear_outputs(out: Path, role: str) -> None:
    """Remove what an earlier run left under our names, so a failure leaves no stale model."""
    for name in output_names(role):
        (out / name).unlink(missing_ok=True)


def _exchange_json(channel: Channel, wallet: bool, obj: dict[str, Any]) -> dict[str, Any]:
    try:
        theirs = json.loads(channel.exchange(json.dumps(obj).encode()))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFrame("expected the peer's set-up frame") from exc
    if not isinstance(theirs, dict):
        raise MalformedFrame("expected the peer's set-up frame")
    return theirs


def split_for_validation(train: np.ndarray, config: GbdtConfig) -> tuple[np.ndarray, np.ndarray]:
    """The first rows of the training part (in the shared hash order) validate, when early stopping."""
    if config.early_stopping == 0:
        return train, train[:0]
    size = max(1, int(len(train) * config.validation_fraction))
    return train[size:], train[:size]


def run_gbdt_party(
    channel: Channel,
    role: str,
    table: Table,
    config: GbdtConfig,
    id_column: str,
    alignment: str = "psi",
    progress: Callable[[int], None] | None = None,
    policy: OutputPolicy | None = None,
    policy_record: dict[str, Any] | None = None,
) -> GbdtResult:
    """The whole flow for one party; raises MlError or ChannelError, writes nothing.

    ``policy`` (already signed by both, `policy.agree`) decides which metrics the wallet
    computes; `check_tree_policy` refuses what the tree protocol cannot honour.
    """
    policy = policy or OutputPolicy(scores="per-row")
    check_tree_policy(policy)
    wallet = role == "wallet"
    if wallet and table.labels is None:
        raise DataError("the wallet must name its label column")
    started = time.perf_counter()
    agree(channel, wallet, config)
    rows = align_over(channel, wallet, table.ids, alignment)
    align_bytes = channel.stats.bytes_received
    if len(rows) < MIN_ROWS:
        raise DataError(f"only {len(rows)} ids are held by both parties (at least {MIN_ROWS} needed)")
    aligned = subset_rows(table, rows)
    train, test = split_rows(aligned.ids)
    train, validation = split_for_validation(train, config)
    if wallet:
        assert aligned.labels is not None
        check_labels(aligned.labels[train])
    binning = fit_binning(subset_rows(aligned, [int(i) for i in train]), config.bins)
    codes = binning.transform(aligned)
    aligned_at = time.perf_counter()
    if wallet:
        he = SecretKeyHolder()
        theirs = _exchange_json(channel, True, {"rows": len(rows), "public_key": he.public_key().hex()})
        _same_rows(theirs, len(rows))
        return _train_wallet(
            channel,
            he,
            theirs,
            aligned,
            codes,
            binning,
            config,
            id_column,
            (train, validation, test),
            (started, aligned_at),
            progress,
            policy,
            _facts(table, rows, alignment, align_bytes, policy_record),
        )
    theirs = _exchange_json(
        channel,
        False,
        {"rows": len(rows), "categorical": binning.categorical.tolist(), "counts": binning.counts.tolist()},
    )
    _same_rows(theirs, len(rows))
    try:
        public_key = bytes.fromhex(str(theirs["public_key"]))
    except (KeyError, ValueError) as exc:
        raise MalformedFrame("expected the wallet's public key") from exc
    server = NetworkServer(channel, codes, binning.categorical, config, PublicKeyHolder(public_key))
    cpu_started = time.process_time()
    model_id, kept = server.serve()
    server.seconds["cpu_train"] = time.process_time() - cpu_started
    model = NetworkModel(model_id, config, binning, kept, server.model)
    assert server.he is not None
    metrics = {
        "rows_aligned": len(rows),
        "seconds": {
            "align": aligned_at - started,
            "train": time.perf_counter() - aligned_at,
            **server.seconds,
        },
        "he": vars(server.he.costs),
        "network_splits": len(server.model.splits),
        "rows_held": table.report.rows_read,
        "policy": policy.as_dict(),
        "preparation": table.report.as_dict(),
    }
    facts = _facts(table, rows, alignment, align_bytes, policy_record)
    facts.update(channel=channel, splits=len(server.model.splits))
    return GbdtResult(role, model.to_json(), party_view(role, config, alignment, facts), metrics)


def check_tree_policy(policy: OutputPolicy) -> None:
    """Refuse, before anything is shared, an output policy the tree protocol cannot honour.

    SecureBoost leaves each party its own splits (``model_to=own``), and the wallet holds
    every leaf value and learns each row's direction at the network's splits, so it can
    compute every scored row's score itself: ``scores=aggregate`` would be a promise the
    protocol does not keep.
    """
    if policy.model_to != "own":
        raise SettingsError(
            "tree models: each party keeps its own splits, so --model-to takes only 'own' "
            f"(not {policy.model_to!r})"
        )
    if policy.scores != "per-row":
        raise SettingsError(
            "tree models: the wallet computes each row's score from the leaves it holds (SecureBoost), "
            "so the policy must say --scores per-row; for aggregate-only scores use the logistic regression"
        )


def _facts(
    table: Table, rows: list[int], alignment: str, align_bytes: int, record: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "rows_held": table.report.rows_read,
        "rows_aligned": len(rows),
        "alignment": alignment,
        "align_bytes": align_bytes,
        "policy_record": record,
    }


def _same_rows(theirs: dict[str, Any], rows: int) -> None:
    if theirs.get("rows") != rows:
        raise MlPeerError("the parties aligned different numbers of rows (mismatched ids)")


def _train_wallet(
    channel: Channel,
    he: SecretKeyHolder,
    theirs: dict[str, Any],
    aligned: Table,
    codes: np.ndarray,
    binning: Binning,
    config: GbdtConfig,
    id_column: str,
    parts: tuple[np.ndarray, np.ndarray, np.ndarray],
    times: tuple[float, float],
    progress: Callable[[int], None] | None,
    policy: OutputPolicy,
    facts: dict[str, Any],
) -> GbdtResult:
    train, validation, test = parts
    try:
        categorical = np.array(theirs["categorical"], dtype=bool)
        counts = np.array(theirs["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedFrame("expected the network's column summary") from exc
    if categorical.ndim != 1 or categorical.shape != counts.shape or not len(counts):
        raise MalformedFrame("expected the network's column summary")
    labels = aligned.labels
    assert labels is not None
    remote = RemoteFeatures(channel, he, categorical, counts, config.bins)
    local = LocalFeatures(codes, binning.categorical, config.bins, config.seed, config.colsample)
    validate = _validator(remote, codes, labels, train, validation) if len(validation) else None
    cpu_started = time.process_time()
    per_tree = len(train) if config.subsample == 1 else max(2, round(len(train) * config.subsample))
    he.start_pool(per_tree, per_tree * config.trees)  # zeros made ahead while the network sums
    try:
        ensemble, history = boost(labels, train, [local, remote], config, validate, progress)
    finally:
        he.stop_pool()
    trained_at = time.perf_counter()
    cpu_train = time.process_time() - cpu_started
    test_bits = remote.bits(test, 0, len(ensemble.trees))
    test_margins = ensemble.margins(codes[test], test_bits)
    model_id = secrets.token_hex(8)
    network_costs = remote.finish(len(ensemble.trees), model_id)
    model = WalletModel(model_id, config, binning, ensemble, id_column)
    metrics: dict[str, Any] = {
        "model": "gbdt",
        "protocol": "SecureBoost, OU-2048 (HEU), g and h packed in one ciphertext",
        "rows_aligned": len(aligned.ids),
        "rows_train": len(train),
        "rows_validation": len(validation),
        "rows_test": len(test),
        "features": {"wallet": codes.shape[1], "network": len(counts)},
        "config": config.to_json(),
        "trees": len(ensemble.trees),
        "history": history,
        "seconds": {
            "align": times[1] - times[0],
            "train": trained_at - times[1],
            "cpu_train": cpu_train,
            **{f"train_{k}": v for k, v in remote.seconds.items()},
        },
        "he": {
            "wallet": vars(he.costs),
            "network": network_costs.get("he", {}),
        },
        "network_seconds": network_costs.get("seconds", {}),
    }
    metrics.update(
        _evaluate(labels, test_margins, codes, binning.categorical, train, test, config, policy.metrics)
    )
    metrics.update(
        rows_held=facts["rows_held"], policy=policy.as_dict(), preparation=aligned.report.as_dict()
    )
    facts.update(
        channel=channel, splits=len(ensemble.network_nodes()), rows_test=len(test), trees=len(ensemble.trees)
    )
    return GbdtResult(
        "wallet", model.to_json(), party_view("wallet", config, facts["alignment"], facts), metrics
    )


def _validator(
    remote: RemoteFeatures, codes: np.ndarray, labels: np.ndarray, train: np.ndarray, rows: np.ndarray
) -> Callable[[int, Tree], float]:
    """Validation loss after each tree; the network's bits come for that tree's splits only."""
    margins = np.full(len(rows), base_margin(labels[train]))

    def validate(t: int, tree: Tree) -> float:
        bits = remote.bits(rows, t, t + 1)
        column = {(t, n): k for k, n in enumerate(tree.network_nodes())}
        margins[:] += Ensemble.tree_values(t, tree, codes[rows], bits, column)
        return log_loss(labels[rows], margins)

    return validate


def _evaluate(
    labels: np.ndarray,
    test_margins: np.ndarray,
    codes: np.ndarray,
    categorical: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    config: GbdtConfig,
    wanted: tuple[str, ...],
) -> dict[str, Any]:
    """The metrics the policy names (AUC, KS, lift), the joint model's and the wallet's alone."""
    from blindgate.pets.ml.evaluate import metrics

    alone = train_plaintext(codes, categorical, labels, train, config)
    wallet_only = metrics(alone.margins(codes[test], None), labels[test], wanted or ("auc",))
    return {
        **metrics(test_margins, labels[test], wanted),
        "wallet_only": wallet_only,
        "wallet_only_auc": wallet_only.get("auc"),
    }


def party_view(
    role: str, config: GbdtConfig, alignment: str, facts: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What this party saw in tree training, item by item, with counts, bytes and frames."""
    facts = facts or {}
    channel = facts.get("channel")
    received = channel.stats.bytes_received - facts["align_bytes"] if channel is not None else None
    frames = channel.stats.frames_received if channel is not None else None
    record = facts.get("policy_record")
    view = View("train", role, policy=record)
    view.add(
        Seen("its own rows", "personal data", count=facts.get("rows_held"), allowed_by="own data"),
        Seen(
            {
                "psi": "which of its ids the peer also holds (PSI aligned join)",
                "given": "the aligned rows from an earlier `blindgate psi --mode join` (digest checked)",
                "join": "the peer's whole id list (plain join)",
            }[alignment],
            "pseudonymous data",
            count=facts.get("rows_aligned"),
            bytes=facts.get("align_bytes"),
        ),
        Seen("the other party's column count and the hyper-parameters", "aggregate", count=2),
    )
    trees = f"policy: model_to=own, scores=per-row (SecureBoost), {config.trees} trees"
    if role == "wallet":
        view.add(
            Seen(
                "per node, the sums of gradients and hessians in each non-empty bin of each "
                "network column (bin counts and categorical flags included; no threshold or name)",
                "aggregate",
                bytes=received,
                frames=frames,
            ),
            Seen(
                "the direction each training row takes at each network split",
                "pseudonymous data",
                count=facts.get("splits"),
            ),
            Seen(
                "joint model's test-set and validation scores",
                "pseudonymous data",
                count=facts.get("rows_test"),
                allowed_by=trees,
            ),
            Seen("metrics: " + (", ".join(_policy_metrics(record)) or "none"), "aggregate", allowed_by=trees),
            Seen(
                "tree shapes, its own splits and all leaf values",
                "aggregate",
                count=facts.get("trees"),
                allowed_by=trees,
            ),
        )
    else:
        view.add(
            Seen(
                "one OU-2048 ciphertext of (gradient, hessian) per sampled row per tree",
                "ciphertext",
                bytes=received,
                frames=frames,
            ),
            Seen(
                "the instance space of every node of every tree: which shared customers sit "
                "together in each node and leaf (a coarse grouping by predicted outcome)",
                "pseudonymous data",
                count=facts.get("rows_aligned"),
            ),
            Seen(
                "its own splits (columns, bins, missing direction)",
                "aggregate",
                count=facts.get("splits"),
                allowed_by=trees,
            ),
        )
        if config.subsample < 1:
            view.add(Seen("each tree's row sample", "pseudonymous data"))
    return {**view.as_dict(), "model": "gbdt"}


def _policy_metrics(record: dict[str, Any] | None) -> list[str]:
    if record is None:
        return list(METRICS)
    return list(record["policy"]["metrics"])


def saw_pairs(view: dict[str, Any]) -> list[tuple[str, str]]:
    """A view file's items as (item, class) pairs, as a receipt carries them."""
    return [(item["item"], item["class"]) for item in view["saw"]]


def write_gbdt_outputs(out: Path, result: GbdtResult) -> None:
    """Model, view and report first, metrics last: metrics.json present means the run completed."""
    write_json(out / f"model-{result.role}.json", result.model)
    write_json(out / f"view-{result.role}.json", result.view)
    write_tree_report(out / f"report-{result.role}.html", result)
    if result.role == "wallet":
        write_json(out / "metrics.json", result.metrics)
    else:
        write_json(out / "costs-network.json", result.metrics)


def write_tree_report(path: Path, result: GbdtResult, reference: dict[str, Any] | None = None) -> None:
    """The run's HTML report: figures, ROC (the joint trees against the wallet's own trees and,
    given ``reference``, the same trees trained on the joined rows in plaintext), the gain chart,
    the loss per tree (training rows, and validation rows when early stopping), the view."""
    from blindgate.pets import report

    metrics = result.metrics
    summary: list[tuple[str, Any]] = [
        ("rows held / aligned", f"{metrics.get('rows_held')} / {metrics.get('rows_aligned')}"),
        ("output policy", json.dumps(metrics.get("policy"))),
    ]
    if result.role == "wallet":
        summary += [
            (
                "rows train / validation / test",
                f"{metrics['rows_train']} / {metrics['rows_validation']} / {metrics['rows_test']}",
            ),
            (
                "features (wallet, network)",
                f"{metrics['features']['wallet']}, {metrics['features']['network']}",
            ),
            ("trees", metrics["trees"]),
        ]
        for key in ("auc", "ks"):
            if key in metrics:
                summary.append((f"joint model {key.upper()}", metrics[key]))
            if key in metrics.get("wallet_only", {}):
                summary.append((f"wallet alone {key.upper()}", metrics["wallet_only"][key]))
    if reference is not None:
        summary.append(("plaintext reference AUC (joined rows, same trees)", f"{reference['auc']:.4f}"))
    summary.append(("seconds", json.dumps({k: round(v, 2) for k, v in metrics.get("seconds", {}).items()})))
    sections = [("summary", report.table(summary, ("", "")))]
    if "roc" in metrics:
        curves: list[report.Curve] = [("joint trees", metrics["roc"]["fpr"], metrics["roc"]["tpr"])]
        alone = metrics.get("wallet_only", {})
        if "roc" in alone:
            curves.append(("wallet alone", alone["roc"]["fpr"], alone["roc"]["tpr"]))
        if reference is not None:
            label = f"plaintext reference (AUC {reference['auc']:.4f})"
            curves.append((label, reference["roc"]["fpr"], reference["roc"]["tpr"]))
        plots = report.roc_plot(curves)
        if metrics.get("lift"):
            plots += report.gain_plot(metrics["lift"])
        history = metrics.get("history", {})
        if history.get("train_loss"):
            plots += report.loss_plot(
                history["train_loss"], "tree", "log loss", "loss per tree", history.get("validation_loss", [])
            )
        sections.append(("curves", plots))
    if metrics.get("lift"):
        sections.append(("lift by decile", report.lift_table(metrics["lift"])))
    sections.append((f"what the {result.role} saw", report.view_table(result.view)))
    report.write_report(path, f"blindgate train --model gbdt: the {result.role}'s report", sections)
