"""The joint-training flow one party runs: align, prepare, share, train, evaluate, report.

Parties: the wallet (party 0: its customers' profile and the label) and the network
(party 1: their payment behaviour). Both run :func:`run_party` against each other.
Alignment, data preparation (``data``), the output policy (``policy``) and evaluation
(``evaluate``) are model-independent; the model's own steps are ``logreg``'s.

What each party sees is written to ``view-<role>.json`` (``pets.view``), item by item
with counts, bytes and rounds: its own rows (personal data, never sent); which of its ids
the peer also holds (pseudonymous data: PSI's aligned join, the default; ``given``: the
files are already PSI's aligned output; ``join``: a plain join where each side sees all
the other's ids); masked openings (secret shares); and only what the signed output
policy allows: metrics and the unlinked (score, label) pairs they come from, or per-row
test scores, to the wallet; the weights of its own columns, or the whole model.
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

from blindgate.net import Channel, MalformedFrame
from blindgate.pets.files import write_json
from blindgate.pets.ml.data import (
    ColumnChoice,
    Encoding,
    Table,
    check_range,
    encode,
    fit_encoding,
    subset_rows,
)
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
from blindgate.pets.ml.policy import OutputPolicy
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor
from blindgate.pets.view import Seen, View

ROLES = {"wallet": WALLET, "network": NETWORK}
FEATURE_BOUND = 1024.0  # |standardised value| allowed: keeps every product inside the fixed-point range
TEST_FRACTION = 0.2
MIN_ROWS = 10


ALIGNMENTS = ("psi", "given", "join")


def align(party: Party, ids: list[str], method: str = "psi") -> list[int]:
    """:func:`align_over` the MPC party's peer channel (the wallet, party 0, receives)."""
    return align_over(party.peer, party.party == 0, ids, method)


def align_over(peer: Channel, wallet: bool, ids: list[str], method: str = "psi") -> list[int]:
    """Indices of our rows that the peer also holds, in an order both sides agree on.

    ``psi``: the PSI module's aligned join (KKRT): each side learns only which of its
    own ids are shared. ``given``: the rows already are the shared rows, in the shared
    order (``blindgate psi --mode join`` wrote them); the parties check that with a
    digest of the ordered ids, which both already hold. ``join``: a plain join (both send
    their id lists), kept for comparison. Then the rows are ordered by a hash of the id,
    which both sides (and the one-command launcher's baseline) compute alike.
    """
    if method == "given":
        mine = hashlib.sha256("\n".join(ids).encode()).digest()
        if peer.exchange(mine) != mine:
            raise DataError(
                "the aligned files do not hold the same ids in the same order: give each party "
                "its own output of the same `blindgate psi --mode join` run, with the same --normalize"
            )
        return sorted(range(len(ids)), key=lambda row: split_key(ids[row]))
    if method == "psi":
        from blindgate.pets.psi import PsiError, run_psi

        try:
            result = run_psi(peer, [i.encode() for i in ids], receiver=wallet, mode="join")
        except PsiError as exc:
            raise DataError(f"alignment by PSI failed: {exc}") from exc
        assert result.matches is not None
        return sorted(result.matches, key=lambda row: split_key(ids[row]))
    assert method == "join"
    try:
        theirs = json.loads(peer.exchange(json.dumps(ids).encode()))
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


@dataclass
class PartyResult:
    role: str
    rows: int
    encoding: Encoding
    weights_share: np.ndarray
    weights: np.ndarray | None  # the whole model, where the policy gives it to this party
    own_weights: np.ndarray | None  # the weights of this party's own columns, where given
    metrics: dict[str, Any]
    view: View
    test_scores: np.ndarray | None = None  # per row, only with scores=per-row (wallet)


def run_party(
    party: Party,
    role: str,
    table: Table,
    config: TrainConfig,
    policy: OutputPolicy | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    alignment: str = "psi",
    choice: ColumnChoice | None = None,
    policy_record: dict[str, Any] | None = None,
) -> PartyResult:
    """The whole flow for one party; raises DataError or ChannelError, writes nothing.

    ``progress(stage, done, total)`` is called as stages advance (epochs while training).
    """
    policy = policy or OutputPolicy()
    tick = progress or (lambda stage, done, total: None)
    me = ROLES[role]
    if me == WALLET and table.labels is None:
        raise DataError("the wallet must name its label column")
    started = time.perf_counter()
    tick("align", 0, 1)
    rows = align(party, table.ids, alignment)
    tick("align", 1, 1)
    if len(rows) < MIN_ROWS:
        raise DataError(f"only {len(rows)} ids are held by both parties (at least {MIN_ROWS} needed)")
    aligned = subset_rows(table, rows)
    encoding = fit_encoding(aligned, choice)
    features = encode(aligned, encoding)
    if me == WALLET:
        features = np.hstack([features, np.ones((len(rows), 1))])  # the bias lives with the wallet
    names = [*encoding.feature_names, *(["(bias)"] if me == WALLET else [])]
    check_range(features, names, FEATURE_BOUND, aligned)
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
    align_bytes = party.peer.stats.bytes_sent

    # Training multiplies each party's clear block where the source can; only the test rows
    # need sharing then (for scoring).
    train_x = None if multiplies_clear_blocks(party) else share_features(party, features[train], widths)
    test_x = share_features(party, features[test], widths)
    labels = aligned.labels[train][:, None] if me == WALLET and aligned.labels is not None else None
    y = SharedTensor.from_owner(party, WALLET, labels, (len(train), 1), "label")
    losses: list[float] = []

    def epoch_done(epoch: int, loss: float | None) -> None:
        if loss is not None:
            losses.append(loss)
        tick("train", epoch, config.epochs)

    tick("train", 0, config.epochs)
    weights = train_shared(party, train_x, y, config, own=(features[train], widths), epoch_loss=epoch_done)
    trained_at = time.perf_counter()

    logits = score_shared(party, test_x, weights)
    tick("evaluate", 0, 1)
    test_labels = aligned.labels[test] if aligned.labels is not None else None
    evaluation = _evaluate_shared(party, logits, test_labels, policy)
    tick("evaluate", 1, 1)
    clear, own = _reveal_weights(party, weights, widths, policy)
    metrics: dict[str, Any] = {
        "rows_held": table.report.rows_read,
        "rows_aligned": len(rows),
        "rows_train": len(train),
        "rows_test": len(test),
        "features": {"wallet": widths[0], "network": widths[1]},
        "config": vars(config),
        "frac_bits": party.fixed.frac_bits,
        "seconds": {"align": aligned_at - started, "train": trained_at - aligned_at},
        "costs": {name: vars(cost) for name, cost in party.costs.items()},
        "alignment": alignment,
        "policy": policy.as_dict(),
        "preparation": table.report.as_dict(),
    }
    test_scores = None
    if me == WALLET:
        assert aligned.labels is not None and evaluation is not None
        scores, test_labels, per_row = evaluation
        if scores.size:
            metrics.update(_metrics(scores, test_labels, policy.metrics))
            metrics["wallet_only"] = _wallet_only(
                features[train], aligned.labels[train], features[test], aligned.labels[test], policy.metrics
            )
            metrics["wallet_only_auc"] = metrics["wallet_only"].get("auc")
        metrics["loss_per_epoch"] = losses
        test_scores = scores if per_row else None
    view = training_view(role, policy, alignment, metrics, party, align_bytes, policy_record)
    return PartyResult(role, len(rows), encoding, weights.share, clear, own, metrics, view, test_scores)


def _evaluate_shared(
    party: Party, logits: SharedTensor, test_labels: np.ndarray | None, policy: OutputPolicy
) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """What the policy lets the wallet see of the test scores: per row, or as unlinked pairs."""
    from blindgate.pets.ml.evaluate import reveal_shuffled

    if policy.scores == "per-row":
        revealed = logits.reveal(to=WALLET)
        if revealed is None:
            return None
        assert test_labels is not None
        return revealed[:, 0], test_labels, True
    if not policy.metrics:
        return (np.zeros(0), np.zeros(0), False) if party.party == WALLET else None
    pairs = reveal_shuffled(party, logits, test_labels)
    return None if pairs is None else (*pairs, False)


def _metrics(scores: np.ndarray, labels: np.ndarray, wanted: tuple[str, ...]) -> dict[str, Any]:
    from blindgate.pets.ml.evaluate import metrics

    return metrics(scores, labels, wanted)


def _wallet_only(
    own_train: np.ndarray,
    train_labels: np.ndarray,
    own_test: np.ndarray,
    test_labels: np.ndarray,
    wanted: tuple[str, ...],
) -> dict[str, Any]:
    """The wallet's own model on its own columns (scikit-learn lbfgs): what joint training adds."""
    from sklearn.linear_model import LogisticRegression

    alone = LogisticRegression(max_iter=5000).fit(own_train[:, :-1], train_labels)  # without the bias column
    return _metrics(alone.decision_function(own_test[:, :-1]), test_labels, wanted or ("auc",))


def _reveal_weights(
    party: Party, weights: SharedTensor, widths: tuple[int, int], policy: OutputPolicy
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the whole model, this party's own part), each where the policy gives it to this party."""
    with party.op("reveal model"):
        if policy.model_to == "none":
            return None, None
        if policy.model_to == "own":
            wallet_part = SharedTensor(weights.share[: widths[0]], party).reveal(to=WALLET)
            network_part = SharedTensor(weights.share[widths[0] :], party).reveal(to=NETWORK)
            return None, wallet_part if party.party == WALLET else network_part
        clear = weights.reveal() if policy.model_to == "both" else weights.reveal(to=ROLES[policy.model_to])
        if clear is None:
            return None, None
        own = clear[: widths[0]] if party.party == WALLET else clear[widths[0] :]
        return clear, own


def training_view(
    role: str,
    policy: OutputPolicy,
    alignment: str,
    metrics: dict[str, Any],
    party: Party,
    align_bytes: int,
    policy_record: dict[str, Any] | None,
) -> View:
    """What this party saw in a training run, item by item, with counts, bytes and rounds."""
    costs = party.total()
    view = View("train", role, policy=policy_record or {"policy": policy.as_dict()})
    view.add(
        Seen("its own rows", "personal data", count=metrics["rows_held"], allowed_by="own data"),
        Seen(
            {
                "psi": "which of its ids the peer also holds (PSI aligned join)",
                "given": "the aligned rows from an earlier `blindgate psi --mode join` (digest checked)",
                "join": "the peer's whole id list (plain join)",
            }[alignment],
            "pseudonymous data",
            count=metrics["rows_aligned"],
            bytes=align_bytes,
        ),
        Seen("row and feature counts of both sides", "aggregate", count=4),
        Seen(
            "masked openings (x - a) during training, scoring and evaluation",
            "secret share",
            bytes=costs.bytes_sent,
            rounds=costs.rounds,
        ),
    )
    allowed = f"policy: scores={policy.scores}, metrics={','.join(policy.metrics) or 'none'}"
    if role == "wallet":
        if policy.scores == "per-row":
            view.add(
                Seen(
                    "the joint model's score of each test row",
                    "pseudonymous data",
                    count=metrics["rows_test"],
                    allowed_by=allowed,
                )
            )
        elif policy.metrics:
            view.add(
                Seen(
                    "the test rows' (score, label) pairs in an order it cannot undo (what the ROC "
                    "curve discloses)",
                    "aggregate",
                    count=metrics["rows_test"],
                    allowed_by=allowed,
                )
            )
        view.add(Seen(f"metrics: {', '.join(policy.metrics) or 'none'}", "aggregate", allowed_by=allowed))
        view.add(
            Seen(
                "training loss (mean squared error of the probabilities) per epoch",
                "aggregate",
                count=len(metrics.get("loss_per_epoch", [])),
            )
        )
    model = f"policy: model_to={policy.model_to}"
    if policy.model_to == "both" or policy.model_to == role:
        view.add(
            Seen(
                "the whole model's weights",
                "aggregate",
                count=sum(metrics["features"].values()),
                allowed_by=model,
            )
        )
    elif policy.model_to == "own":
        view.add(
            Seen(
                "the weights of its own columns",
                "aggregate",
                count=metrics["features"][role],
                allowed_by=model,
            )
        )
    view.add(
        Seen("its share of the model's weights", "secret share", count=sum(metrics["features"].values()))
    )
    return view


DEALER_VIEW = View("train", "dealer").add(
    Seen("shapes of the triples and pairs asked for", "aggregate"),
    Seen("row positions of each training batch (masked products)", "aggregate"),
    Seen("the random triples it made", "secret share"),
)


def model_json(result: PartyResult, frac_bits: int, id_column: str) -> dict[str, Any]:
    return {
        "format": "blindgate-ss-logreg/1",
        "role": result.role,
        "id_column": id_column,
        "frac_bits": frac_bits,
        "features": result.metrics["features"],
        "feature_names": [*result.encoding.feature_names, *(["(bias)"] if result.role == "wallet" else [])],
        "encoding": result.encoding.to_json(),
        "weights_share": [int(v) for v in result.weights_share.reshape(-1)],
        "weights": None if result.weights is None else result.weights.reshape(-1).tolist(),
        "own_weights": None if result.own_weights is None else result.own_weights.reshape(-1).tolist(),
    }


def write_outputs(out: Path, result: PartyResult, frac_bits: int, id_column: str) -> None:
    """Model, view and report first, metrics last: metrics.json present means the run completed."""
    write_json(out / f"model-{result.role}.json", model_json(result, frac_bits, id_column))
    view = result.view.as_dict()
    write_json(out / f"view-{result.role}.json", view)
    if result.test_scores is not None:
        write_json(out / "test-scores.json", {"scores": result.test_scores.tolist()})
    if result.role == "wallet":
        write_training_report(out / "report-wallet.html", result.metrics, view)
        write_json(out / "metrics.json", result.metrics)
    else:
        write_training_report(out / "report-network.html", result.metrics, view)
        write_json(out / "costs-network.json", result.metrics)


def write_training_report(
    path: Path, metrics: dict[str, Any], view: dict[str, Any], reference: dict[str, Any] | None = None
) -> None:
    """The run's HTML report: figures, curves (the wallet's), and what this party saw."""
    from blindgate.pets import report

    summary = [
        (
            "rows held / aligned / train / test",
            f"{metrics['rows_held']} / {metrics['rows_aligned']} / "
            f"{metrics['rows_train']} / {metrics['rows_test']}",
        ),
        ("features (wallet, network)", f"{metrics['features']['wallet']}, {metrics['features']['network']}"),
        ("seconds (align, train)", f"{metrics['seconds']['align']:.1f}, {metrics['seconds']['train']:.1f}"),
        ("output policy", json.dumps(metrics["policy"])),
    ]
    for key in ("auc", "ks"):
        if key in metrics:
            summary.append((f"joint model {key.upper()}", f"{metrics[key]:.4f}"))
        if key in metrics.get("wallet_only", {}):
            summary.append((f"wallet alone {key.upper()}", f"{metrics['wallet_only'][key]:.4f}"))
    if reference is not None and "auc" in reference:
        summary.append(("plaintext reference AUC (joined data, scikit-learn)", f"{reference['auc']:.4f}"))
    sections = [("summary", report.table(summary, ("", "")))]
    if "roc" in metrics:
        curves: list[report.Curve] = [
            (
                f"joint model on shares (AUC {metrics.get('auc', float('nan')):.4f})",
                metrics["roc"]["fpr"],
                metrics["roc"]["tpr"],
            ),
        ]
        if "roc" in metrics.get("wallet_only", {}):
            alone = metrics["wallet_only"]
            curves.append(
                (
                    f"wallet alone (AUC {alone.get('auc', float('nan')):.4f})",
                    alone["roc"]["fpr"],
                    alone["roc"]["tpr"],
                )
            )
        if reference is not None and "roc" in reference:
            curves.append(
                (
                    f"plaintext reference (AUC {reference['auc']:.4f})",
                    reference["roc"]["fpr"],
                    reference["roc"]["tpr"],
                )
            )
        plots = report.roc_plot(curves)
        if metrics.get("lift"):
            plots += report.gain_plot(metrics["lift"])
        if metrics.get("loss_per_epoch"):
            plots += report.loss_plot(metrics["loss_per_epoch"])
        sections.append(("curves", plots))
    if metrics.get("lift"):
        sections.append(("lift by decile", report.lift_table(metrics["lift"])))
    sections.append(
        (
            "data preparation",
            report.table([(k, json.dumps(v)) for k, v in metrics["preparation"].items()], ("", "")),
        )
    )
    sections.append((f"what the {view['role']} saw", report.view_table(view)))
    report.write_report(path, f"blindgate train: the {view['role']}'s report", sections)
