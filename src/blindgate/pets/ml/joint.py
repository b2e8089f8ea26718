"""The joint-training flow one party runs: align, encode, share, train, evaluate, report.

Parties: the wallet (party 0: its customers' profile and the label) and the network
(party 1: their payment behaviour). Both run :func:`run_party` against each other.

What each party sees (also written to ``view-<role>.json``):
- its own rows: personal data, never sent;
- which of its ids the peer also holds: pseudonymous data (PSI's aligned join, the
  default; ``alignment="join"`` is a plain join where each side sees all the other's ids);
- masked openings during training: secret shares (uniform, they carry nothing alone);
- the test-set scores (the wallet only, to compute the AUC): pseudonymous data;
- metrics and, when revealed to it, the weights: aggregates.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.fileio import write_atomically
from blindgate.net import MalformedFrame
from blindgate.pets.ml.data import Encoding, Table, check_range, encode, fit_encoding
from blindgate.pets.ml.errors import DataError
from blindgate.pets.ml.logreg import (
    NETWORK,
    WALLET,
    TrainConfig,
    multiplies_clear_blocks,
    score_shared,
    share_features,
    train_shared,
)
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor

ROLES = {"wallet": WALLET, "network": NETWORK}
FEATURE_BOUND = 1024.0  # |standardised value| allowed: keeps every product inside the fixed-point range
TEST_FRACTION = 0.2
MIN_ROWS = 10


def write_json(path: Path, obj: Any) -> None:
    write_atomically(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def align(party: Party, ids: list[str], method: str = "psi") -> list[int]:
    """Indices of our rows that the peer also holds, in an order both sides agree on.

    ``psi``: the PSI module's aligned join (KKRT): each side learns only which of its
    own ids are shared. ``join``: a plain join (both send their id lists), kept for
    comparison. Either way the rows are then ordered by a hash of the id, which both
    sides (and the one-command launcher's baseline) can compute alike.
    """
    if method == "psi":
        from blindgate.pets.psi import PsiError, run_psi

        try:
            result = run_psi(party.peer, [i.encode() for i in ids], receiver=party.party == 0, mode="join")
        except PsiError as exc:
            raise DataError(f"alignment by PSI failed: {exc}") from exc
        assert result.matches is not None
        return sorted(result.matches, key=lambda row: split_key(ids[row]))
    assert method == "join"
    try:
        theirs = json.loads(party.peer.exchange(json.dumps(ids).encode()))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFrame("expected the peer's id list") from exc
    if not isinstance(theirs, list) or not all(isinstance(i, str) for i in theirs):
        raise MalformedFrame("expected the peer's id list")
    common = set(ids) & set(theirs)
    position = {value: index for index, value in enumerate(ids)}
    return [position[value] for value in sorted(common, key=split_key)]


def split_key(identifier: str) -> bytes:
    return hashlib.sha256(b"blindgate-split:" + identifier.encode()).digest()


def split_rows(ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices for ids already in :func:`align` order (hash order).

    The first 20% in hash order are the test set: any holder of the ids (a party, or
    the one-command launcher computing the plaintext baseline) derives the same split.
    """
    test = max(1, int(len(ids) * TEST_FRACTION))
    order = np.arange(len(ids))
    return order[test:], order[:test]


def subset_rows(table: Table, rows: list[int]) -> Table:
    labels = table.labels[rows] if table.labels is not None else None
    return Table([table.ids[i] for i in rows], table.columns, [table.cells[i] for i in rows], labels)


@dataclass
class PartyResult:
    role: str
    rows: int
    encoding: Encoding
    weights_share: np.ndarray
    weights: np.ndarray | None
    metrics: dict[str, Any]
    view: dict[str, Any]


def run_party(
    party: Party,
    role: str,
    table: Table,
    config: TrainConfig,
    reveal: str,
    progress: Callable[[int], None] | None = None,
    alignment: str = "psi",
) -> PartyResult:
    """The whole flow for one party; raises DataError or ChannelError, writes nothing."""
    me = ROLES[role]
    if me == WALLET and table.labels is None:
        raise DataError("the wallet must name its label column")
    started = time.perf_counter()
    rows = align(party, table.ids, alignment)
    if len(rows) < MIN_ROWS:
        raise DataError(f"only {len(rows)} ids are held by both parties (at least {MIN_ROWS} needed)")
    aligned = subset_rows(table, rows)
    encoding = fit_encoding(aligned)
    features = encode(aligned, encoding)
    if me == WALLET:
        features = np.hstack([features, np.ones((len(rows), 1))])  # the bias lives with the wallet
    names = [*encoding.feature_names, *(["(bias)"] if me == WALLET else [])]
    check_range(features, names, FEATURE_BOUND)
    mine = json.dumps({"rows": len(rows), "width": features.shape[1]}).encode()
    try:
        theirs = json.loads(party.peer.exchange(mine))
        int(theirs["width"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MalformedFrame("expected the peer's table sizes") from exc
    if theirs.get("rows") != len(rows):
        raise DataError("the parties aligned different numbers of rows (mismatched ids)")
    widths = (
        (features.shape[1], int(theirs["width"]))
        if me == WALLET
        else (int(theirs["width"]), features.shape[1])
    )
    train, test = split_rows(aligned.ids)
    if me == WALLET:
        assert aligned.labels is not None
        if len(set(aligned.labels[train].tolist())) < 2:
            raise DataError("the label column has a single class among the training rows")
    aligned_at = time.perf_counter()

    # Training multiplies each party's clear block where the source can; only the test rows
    # need sharing then (for scoring).
    train_x = None if multiplies_clear_blocks(party) else share_features(party, features[train], widths)
    test_x = share_features(party, features[test], widths)
    labels = aligned.labels[train][:, None] if me == WALLET and aligned.labels is not None else None
    y = SharedTensor.from_owner(party, WALLET, labels, (len(train), 1), "label")
    weights = train_shared(party, train_x, y, config, progress, own=(features[train], widths))
    trained_at = time.perf_counter()

    logits = score_shared(party, test_x, weights).reveal(to=WALLET)
    clear = _reveal_weights(weights, reveal)
    metrics: dict[str, Any] = {
        "rows_held": len(table.ids),
        "rows_aligned": len(rows),
        "rows_train": len(train),
        "rows_test": len(test),
        "features": {"wallet": widths[0], "network": widths[1]},
        "config": vars(config),
        "frac_bits": party.fixed.frac_bits,
        "seconds": {"align": aligned_at - started, "train": trained_at - aligned_at},
        "costs": {name: vars(cost) for name, cost in party.costs.items()},
    }
    if me == WALLET:
        assert logits is not None and aligned.labels is not None
        metrics.update(
            _evaluate(
                aligned.labels[test], logits[:, 0], features[train], aligned.labels[train], features[test]
            )
        )
    metrics["alignment"] = alignment
    return PartyResult(
        role, len(rows), encoding, weights.share, clear, metrics, party_view(role, reveal, alignment)
    )


def _reveal_weights(weights: SharedTensor, reveal: str) -> np.ndarray | None:
    if reveal == "none":
        return None
    if reveal == "both":
        return weights.reveal()
    return weights.reveal(to=ROLES[reveal])


def _evaluate(
    test_labels: np.ndarray,
    logits: np.ndarray,
    own_train: np.ndarray,
    train_labels: np.ndarray,
    own_test: np.ndarray,
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score, roc_curve

    alone = LogisticRegression(max_iter=5000).fit(own_train[:, :-1], train_labels)  # without the bias column
    fpr, tpr, _ = roc_curve(test_labels, logits)
    return {
        "auc": float(roc_auc_score(test_labels, logits)),
        "wallet_only_auc": float(roc_auc_score(test_labels, alone.decision_function(own_test[:, :-1]))),
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
    }


def party_view(role: str, reveal: str, alignment: str = "psi") -> dict[str, Any]:
    """What this party saw, each item classed as the DESIGN asks."""
    sees_weights = reveal in {role, "both"}
    view: dict[str, Any] = {
        "role": role,
        "saw": [
            {"item": "its own rows", "class": "personal data"},
            {
                "item": "which of its ids the peer also holds (PSI join)"
                if alignment == "psi"
                else "the peer's whole id list (plain join)",
                "class": "pseudonymous data",
            },
            {"item": "masked openings x - a during training and scoring", "class": "secret share"},
            {"item": "row counts and feature counts of both sides", "class": "aggregate"},
        ],
    }
    if role == "wallet":
        view["saw"].append({"item": "joint model's test-set scores", "class": "pseudonymous data"})
        view["saw"].append({"item": "AUC and ROC curve", "class": "aggregate"})
    view["saw"].append(
        {
            "item": "model weights" if sees_weights else "its share of the model weights",
            "class": "aggregate" if sees_weights else "secret share",
        }
    )
    return view


DEALER_VIEW = {
    "role": "dealer",
    "saw": [
        {"item": "shapes of the triples and pairs asked for", "class": "aggregate"},
        {"item": "row positions of each training batch (masked products)", "class": "aggregate"},
        {"item": "the random triples it made", "class": "secret share"},
    ],
}


def model_json(result: PartyResult, frac_bits: int, id_column: str) -> dict[str, Any]:
    return {
        "format": "blindgate-ss-logreg/1",
        "role": result.role,
        "id_column": id_column,
        "frac_bits": frac_bits,
        "features": result.metrics["features"],
        "encoding": result.encoding.to_json(),
        "weights_share": [int(v) for v in result.weights_share.reshape(-1)],
        "weights": None if result.weights is None else result.weights.reshape(-1).tolist(),
    }


def write_outputs(out: Path, result: PartyResult, frac_bits: int, id_column: str) -> None:
    """Model and view first, metrics last: metrics.json present means the run completed."""
    write_json(out / f"model-{result.role}.json", model_json(result, frac_bits, id_column))
    write_json(out / f"view-{result.role}.json", result.view)
    if result.role == "wallet":
        roc = result.metrics.pop("roc")
        write_roc(out / "roc.png", roc["fpr"], roc["tpr"], result.metrics["auc"])
        write_json(out / "metrics.json", result.metrics)
    else:
        write_json(out / "costs-network.json", result.metrics)


def write_roc(path: Path, fpr: list[float], tpr: list[float], auc: float) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.plot(fpr, tpr, label=f"joint model on shares (AUC {auc:.4f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(loc="lower right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomically(path, buffer.getvalue())
