"""Gradient-boosted trees on binned columns, the same algorithm whoever holds the columns.

Second-order boosting of the logistic loss (the XGBoost objective, its "hist" method):
each tree grows level by level to ``depth``; a node's split maximises

    gain = 1/2 [ G_L^2/(H_L+l2) + G_R^2/(H_R+l2) - G^2/(H+l2) ] - gamma

over every column's bin boundaries and both directions for missing values, under the
``min_child_weight`` bound on H of each side; a leaf's value is -lr * G/(H+l2). Numeric
columns split on an ordered boundary; categorical columns on a set of levels, found by
ordering the levels by G/(H+l2) (the optimal partition for this objective, as XGBoost
does) - no one-hot encoding. Children's histograms: the smaller child is summed, the other
is its parent's minus it.

The grower reads columns through :class:`FeatureSource`: :class:`LocalFeatures` for the
columns a party holds in clear; the joint protocol adds the peer's columns through a
source that asks the peer (``protocol.RemoteFeatures``). Trained on one party's columns
alone it is the plaintext reference (and the wallet-only baseline).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from blindgate.pets.ml.errors import DataError, SettingsError

WALLET_OWNER, NETWORK_OWNER, LEAF, ABSENT = 0, 1, 2, -1
MIN_HESSIAN = 1e-6  # a side lighter than this is empty, whatever min_child_weight says


@dataclass(frozen=True)
class GbdtConfig:
    """Hyper-parameters; both parties must hold the same set (checked at the start)."""

    trees: int = 50
    depth: int = 5
    learning_rate: float = 0.3
    bins: int = 32
    min_child_weight: float = 1.0
    l2: float = 1.0
    gamma: float = 0.0
    subsample: float = 1.0
    colsample: float = 1.0
    early_stopping: int = 0  # rounds without improvement on the validation split; 0: off
    validation_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "trees": 1 <= self.trees <= 10_000,
            "depth": 1 <= self.depth <= 12,
            "learning_rate": 0 < self.learning_rate <= 1,
            "bins": 2 <= self.bins <= 126,
            "min_child_weight": self.min_child_weight >= 0,
            "l2": self.l2 >= 0,
            "gamma": self.gamma >= 0,
            "subsample": 0 < self.subsample <= 1,
            "colsample": 0 < self.colsample <= 1,
            "early_stopping": self.early_stopping >= 0,
            "validation_fraction": 0 < self.validation_fraction < 0.5,
        }
        for name, ok in checks.items():
            if not ok or (isinstance(getattr(self, name), float) and not math.isfinite(getattr(self, name))):
                raise SettingsError(f"the tree hyper-parameter {name} is out of range")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Split:
    """Send a row left when ``left[code]``; code ``bins`` (missing) follows the default direction."""

    feature: int
    left: np.ndarray  # bool, (bins + 1,)
    gain: float


def best_split(
    grad: np.ndarray,
    hess: np.ndarray,
    categorical: np.ndarray,
    allowed: np.ndarray,
    config: GbdtConfig,
) -> Split | None:
    """The best split of one node over the columns of ``grad``/``hess`` (columns x (bins+1))."""
    columns, width = grad.shape
    bins = width - 1
    g_bins, h_bins = grad[:, :bins], hess[:, :bins]
    g_missing, h_missing = grad[:, bins], hess[:, bins]
    g_total, h_total = grad.sum(axis=1), hess.sum(axis=1)
    order = np.tile(np.arange(bins), (columns, 1))
    for j in np.nonzero(categorical)[0]:
        ratio = np.where(h_bins[j] > 0, g_bins[j] / (h_bins[j] + config.l2), np.inf)
        order[j] = np.argsort(ratio, kind="stable")
    g_left = np.cumsum(np.take_along_axis(g_bins, order, axis=1), axis=1)[:, :-1]
    h_left = np.cumsum(np.take_along_axis(h_bins, order, axis=1), axis=1)[:, :-1]
    parent = (g_total**2 / (h_total + config.l2))[:, None]
    best: tuple[float, int, int, bool] | None = None
    for missing_left in (True, False):
        gl = g_left + (g_missing[:, None] if missing_left else 0.0)
        hl = h_left + (h_missing[:, None] if missing_left else 0.0)
        gr, hr = g_total[:, None] - gl, h_total[:, None] - hl
        floor = max(config.min_child_weight, MIN_HESSIAN)
        valid = (hl >= floor) & (hr >= floor) & allowed[:, None]
        gain = 0.5 * (gl**2 / (hl + config.l2) + gr**2 / (hr + config.l2) - parent) - config.gamma
        gain = np.where(valid, gain, -np.inf)
        at = int(np.argmax(gain))
        value = float(gain.flat[at])
        if value > 1e-9 and (best is None or value > best[0]):
            best = (value, at // gain.shape[1], at % gain.shape[1], missing_left)
    if best is None:
        return None
    gain_value, column, position, missing_left = best
    left = np.zeros(bins + 1, dtype=bool)
    left[order[column, : position + 1]] = True
    left[bins] = missing_left
    return Split(column, left, gain_value)


class FeatureSource(Protocol):
    """Columns the grower can split on: their histograms per node, and routing on their splits."""

    categorical: np.ndarray

    def begin_tree(self, tree: int, grad: np.ndarray, hess: np.ndarray, sample: np.ndarray) -> np.ndarray:
        """Start a tree on the sampled rows; return the mask of columns it may use."""
        ...

    def histograms(self, members: dict[int, np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """(G, H) per node, each (columns x (bins+1)), over the node's sampled rows."""
        ...

    def route(self, tree: int, splits: dict[int, tuple[Split, np.ndarray]]) -> dict[int, np.ndarray]:
        """For each node: which of the given rows go left under the split."""
        ...


class LocalFeatures:
    """Columns held in clear by the party that grows the tree."""

    def __init__(self, codes: np.ndarray, categorical: np.ndarray, bins: int, seed: int, colsample: float):
        self.codes = codes
        self.categorical = categorical
        self.bins = bins
        self.colsample = colsample
        self.rng = np.random.default_rng(seed)
        self.offsets = (np.arange(codes.shape[1]) * (bins + 1))[None, :]
        self.grad = self.hess = np.zeros(0)

    def begin_tree(self, tree: int, grad: np.ndarray, hess: np.ndarray, sample: np.ndarray) -> np.ndarray:
        self.grad, self.hess = grad, hess
        return column_sample(self.rng, self.codes.shape[1], self.colsample)

    def histograms(self, members: dict[int, np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        return {node: self._histogram(rows) for node, rows in members.items()}

    def _histogram(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        columns = self.codes.shape[1]
        flat = (self.codes[rows].astype(np.int64) + self.offsets).ravel()
        size = columns * (self.bins + 1)
        grad = np.bincount(flat, np.repeat(self.grad[rows], columns), size)
        hess = np.bincount(flat, np.repeat(self.hess[rows], columns), size)
        return grad.reshape(columns, -1), hess.reshape(columns, -1)

    def route(self, tree: int, splits: dict[int, tuple[Split, np.ndarray]]) -> dict[int, np.ndarray]:
        return {node: split.left[self.codes[rows, split.feature]] for node, (split, rows) in splits.items()}


def column_sample(rng: np.random.Generator, columns: int, fraction: float) -> np.ndarray:
    allowed = np.ones(columns, dtype=bool)
    if fraction < 1 and columns > 0:
        keep = max(1, round(columns * fraction))
        allowed[:] = False
        allowed[rng.choice(columns, keep, replace=False)] = True
    return allowed


@dataclass
class Tree:
    """One tree in heap order (children of n: 2n+1, 2n+2), as the wallet holds it.

    ``owner`` says who splits each node (or LEAF/ABSENT). The wallet's splits are in
    ``feature``/``left``; a network node's split is known only to the network.
    """

    owner: np.ndarray  # int8 (nodes,)
    feature: np.ndarray  # int32 (nodes,), the wallet's column, -1 elsewhere
    left: np.ndarray  # bool (nodes, bins + 1)
    value: np.ndarray  # float64 (nodes,), leaf values

    @classmethod
    def empty(cls, depth: int, bins: int) -> Tree:
        nodes = 2 ** (depth + 1) - 1
        return cls(
            np.full(nodes, ABSENT, dtype=np.int8),
            np.full(nodes, -1, dtype=np.int32),
            np.zeros((nodes, bins + 1), dtype=bool),
            np.zeros(nodes),
        )

    def network_nodes(self) -> list[int]:
        return [int(n) for n in np.nonzero(self.owner == NETWORK_OWNER)[0]]


@dataclass
class Ensemble:
    base: float
    trees: list[Tree] = field(default_factory=list)

    def network_nodes(self) -> list[tuple[int, int]]:
        """(tree, node) of every network split, in the order the network's bits come in."""
        return [(t, n) for t, tree in enumerate(self.trees) for n in tree.network_nodes()]

    def margins(
        self, codes: np.ndarray, network_bits: np.ndarray | None, upto: int | None = None
    ) -> np.ndarray:
        """Raw scores: the wallet's codes and the network's go-left bits (rows x network splits)."""
        trees = self.trees[:upto]
        column = {key: k for k, key in enumerate(self.network_nodes())}
        out = np.full(codes.shape[0], self.base)
        for t, tree in enumerate(trees):
            out += self.tree_values(t, tree, codes, network_bits, column)
        return out

    @staticmethod
    def tree_values(
        t: int, tree: Tree, codes: np.ndarray, bits: np.ndarray | None, column: dict[tuple[int, int], int]
    ) -> np.ndarray:
        rows = np.arange(codes.shape[0])
        node = np.zeros(codes.shape[0], dtype=np.int64)
        bit_column = np.array([column.get((t, n), -1) for n in range(len(tree.owner))])
        while True:
            owner = tree.owner[node]
            inner = (owner == WALLET_OWNER) | (owner == NETWORK_OWNER)
            if not inner.any():
                break
            feature = np.maximum(tree.feature[node], 0)
            wallet_left = (
                tree.left[node, codes[rows, feature]] if codes.shape[1] else np.zeros(len(rows), bool)
            )
            if bits is not None and bits.shape[1]:
                network_left = bits[rows, np.maximum(bit_column[node], 0)]
            else:
                network_left = np.zeros(len(rows), dtype=bool)
            go_left = np.where(owner == WALLET_OWNER, wallet_left, network_left)
            node = np.where(inner, 2 * node + 1 + (~go_left), node)
        return np.asarray(tree.value[node])


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(x / 2.0))


def logistic_gradients(labels: np.ndarray, margins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = sigmoid(margins)
    return p - labels, np.maximum(p * (1.0 - p), 1e-16)


def base_margin(labels: np.ndarray) -> float:
    rate = float(np.clip(labels.mean(), 1e-6, 1 - 1e-6))
    return math.log(rate / (1 - rate))


def grow_tree(
    tree_index: int,
    grad: np.ndarray,
    hess: np.ndarray,
    train_rows: np.ndarray,
    sample: np.ndarray,
    sources: list[FeatureSource],
    config: GbdtConfig,
) -> tuple[Tree, np.ndarray]:
    """Grow one tree; return it and the leaf (node) of every row in ``train_rows``."""
    tree = Tree.empty(config.depth, config.bins)
    allowed = [source.begin_tree(tree_index, grad, hess, sample) for source in sources]
    in_sample = np.zeros(len(grad), dtype=bool)
    in_sample[sample] = True
    members = {0: train_rows}  # all training rows of each open node (sampled or not)
    parents: list[dict[int, tuple[np.ndarray, np.ndarray]]] = [{} for _ in sources]
    leaves: dict[int, np.ndarray] = {}
    for _level in range(config.depth):
        sampled = {node: rows[in_sample[rows]] for node, rows in members.items()}
        hists = [
            _level_histograms(src, sampled, parent) for src, parent in zip(sources, parents, strict=True)
        ]
        choice = _choose_splits(sampled, hists, sources, allowed, config)
        routed: dict[int, np.ndarray] = {}
        for s, source in enumerate(sources):
            asked = {node: (split, members[node]) for node, (owner, split) in choice.items() if owner == s}
            if asked:
                routed.update(source.route(tree_index, asked))
        next_members: dict[int, np.ndarray] = {}
        for node, rows in members.items():
            if node not in choice:
                leaves[node] = rows
                continue
            owner, split = choice[node]
            tree.owner[node] = WALLET_OWNER if owner == 0 else NETWORK_OWNER
            if owner == 0:
                tree.feature[node], tree.left[node] = split.feature, split.left
            go_left = routed[node]
            next_members[2 * node + 1], next_members[2 * node + 2] = rows[go_left], rows[~go_left]
        parents = [{child: h[(child - 1) // 2] for child in next_members} for h in hists]
        members = next_members
    leaves.update(members)
    leaf_of = np.zeros(len(grad), dtype=np.int64)
    for node, rows in leaves.items():
        tree.owner[node] = LEAF
        leaf_of[rows] = node
        sampled_rows = rows[in_sample[rows]]
        g, h = grad[sampled_rows].sum(), hess[sampled_rows].sum()
        tree.value[node] = -config.learning_rate * g / (h + config.l2)
    return tree, leaf_of[train_rows]


def _level_histograms(
    source: FeatureSource,
    sampled: dict[int, np.ndarray],
    parent: dict[int, tuple[np.ndarray, np.ndarray]],
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Sum the smaller child of each pair; the other is the parent's histogram minus it."""
    summed = {}
    for node, rows in sampled.items():
        sibling = node + 1 if node % 2 == 1 else node - 1
        if (
            node == 0
            or sibling not in sampled
            or len(rows) < len(sampled[sibling])
            or (len(rows) == len(sampled[sibling]) and node % 2 == 1)
        ):
            summed[node] = rows
    result = source.histograms(summed)
    for node in sampled:
        if node not in result:
            sibling = node + 1 if node % 2 == 1 else node - 1
            g_parent, h_parent = parent[node]
            result[node] = (g_parent - result[sibling][0], h_parent - result[sibling][1])
    return result


def _choose_splits(
    sampled: dict[int, np.ndarray],
    hists: list[dict[int, tuple[np.ndarray, np.ndarray]]],
    sources: list[FeatureSource],
    allowed: list[np.ndarray],
    config: GbdtConfig,
) -> dict[int, tuple[int, Split]]:
    choice: dict[int, tuple[int, Split]] = {}
    for node in sampled:
        best: tuple[int, Split] | None = None
        for s, source in enumerate(sources):
            grad, hess = hists[s][node]
            if grad.shape[0] == 0:
                continue
            split = best_split(grad, hess, source.categorical, allowed[s], config)
            if split is not None and (best is None or split.gain > best[1].gain):
                best = (s, split)
        if best is not None:
            choice[node] = best
    return choice


def boost(
    labels: np.ndarray,
    train_rows: np.ndarray,
    sources: list[FeatureSource],
    config: GbdtConfig,
    validate: Callable[[int, Tree], float] | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[Ensemble, dict[str, Any]]:
    """Boost ``config.trees`` trees on ``train_rows``; ``validate(t, tree)`` returns the
    validation loss after tree t, for early stopping. Returns the ensemble and a history."""
    rng = np.random.default_rng(config.seed)
    ensemble = Ensemble(base_margin(labels[train_rows]))
    margins = np.full(len(labels), ensemble.base)
    losses: list[float] = []
    train_losses: list[float] = []  # for the report's loss curve: the training rows' log loss
    best_at, best_loss = 0, math.inf
    for t in range(config.trees):
        grad, hess = logistic_gradients(labels, margins)
        sample = train_rows
        if config.subsample < 1:
            keep = max(2, round(len(train_rows) * config.subsample))
            sample = np.sort(rng.choice(train_rows, keep, replace=False))
        tree, leaves = grow_tree(t, grad, hess, train_rows, sample, sources, config)
        ensemble.trees.append(tree)
        margins[train_rows] += tree.value[leaves]
        train_losses.append(log_loss(labels[train_rows], margins[train_rows]))
        if progress is not None:
            progress(t + 1)
        if validate is not None:
            losses.append(validate(t, tree))
            if losses[-1] < best_loss - 1e-12:
                best_at, best_loss = t + 1, losses[-1]
            elif t + 1 - best_at >= config.early_stopping > 0:
                break
    if validate is not None and config.early_stopping > 0:
        ensemble.trees = ensemble.trees[:best_at]
    history = {"validation_loss": losses, "train_loss": train_losses, "trees_kept": len(ensemble.trees)}
    return ensemble, history


def log_loss(labels: np.ndarray, margins: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0.0, margins) - labels * margins))


def train_plaintext(
    codes: np.ndarray, categorical: np.ndarray, labels: np.ndarray, train_rows: np.ndarray, config: GbdtConfig
) -> Ensemble:
    """The same algorithm on columns all held by one party: the reference and the wallet-only baseline."""
    source = LocalFeatures(codes, categorical, config.bins, config.seed, config.colsample)
    ensemble, _ = boost(labels, train_rows, [source], config)
    return ensemble


def check_labels(labels: np.ndarray) -> None:
    if len(np.unique(labels)) < 2:
        raise DataError("the label column has a single class among the training rows")
