"""Plaintext references for the joint trees, on the joined rows (both files in one hand).

Only the one-command launcher, the tests and the benchmark hold both parties' files, so
only they can compute these: the same algorithm on the joined columns (which the joint
model must match) and XGBoost ``hist`` with the same hyper-parameters, when installed.
Rows, order, train/test split and binning mirror what the parties do.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.pets.files import write_json
from blindgate.pets.ml.data import Table, subset_rows
from blindgate.pets.ml.gbdt.binning import Binning, column_cells, fit_binning, is_missing
from blindgate.pets.ml.gbdt.flow import split_for_validation
from blindgate.pets.ml.gbdt.trees import GbdtConfig, base_margin, train_plaintext
from blindgate.pets.ml.joint import split_key, split_rows


@dataclass
class JoinedRows:
    wallet: Table
    network: Table
    wallet_binning: Binning
    network_binning: Binning
    labels: np.ndarray
    train: np.ndarray
    test: np.ndarray

    @property
    def codes(self) -> np.ndarray:
        return np.hstack(
            [self.wallet_binning.transform(self.wallet), self.network_binning.transform(self.network)]
        )

    @property
    def categorical(self) -> np.ndarray:
        return np.concatenate([self.wallet_binning.categorical, self.network_binning.categorical])

    def raw(self) -> tuple[np.ndarray, list[str]]:
        """Floats for XGBoost: numbers as read, categories as level numbers, NaN for missing."""
        blocks, types = [], []
        for table, binning in ((self.wallet, self.wallet_binning), (self.network, self.network_binning)):
            codes = binning.transform(table)
            for j, column in enumerate(binning.columns):
                cells = column_cells(table, column.name)
                if column.categorical:
                    values = codes[:, j].astype(float)
                    values[codes[:, j] == binning.bins] = math.nan
                    types.append("c")
                else:
                    values = np.array([math.nan if is_missing(c) else float(c) for c in cells])
                    types.append("q")
                blocks.append(values[:, None])
        return np.hstack(blocks), types


def join(wallet: Table, network: Table, config: GbdtConfig) -> JoinedRows:
    common = sorted(set(wallet.ids) & set(network.ids), key=split_key)
    w_at = {value: i for i, value in enumerate(wallet.ids)}
    n_at = {value: i for i, value in enumerate(network.ids)}
    w_rows = subset_rows(wallet, [w_at[v] for v in common])
    n_rows = subset_rows(network, [n_at[v] for v in common])
    train, test = split_rows(common)
    train, _ = split_for_validation(train, config)
    fit = [int(i) for i in train]
    assert w_rows.labels is not None
    return JoinedRows(
        w_rows,
        n_rows,
        fit_binning(subset_rows(w_rows, fit), config.bins),
        fit_binning(subset_rows(n_rows, fit), config.bins),
        w_rows.labels,
        train,
        test,
    )


def same_algorithm_reference(rows: JoinedRows, config: GbdtConfig) -> dict[str, Any]:
    """The same trees trained on the joined rows in one hand: test AUC and ROC curve."""
    from sklearn.metrics import roc_auc_score, roc_curve

    codes = rows.codes
    ensemble = train_plaintext(codes, rows.categorical, rows.labels, rows.train, config)
    scores = ensemble.margins(codes[rows.test], None)
    fpr, tpr, _ = roc_curve(rows.labels[rows.test], scores)
    return {
        "auc": float(roc_auc_score(rows.labels[rows.test], scores)),
        "roc": {"fpr": fpr.tolist(), "tpr": tpr.tolist()},
    }


def xgboost_auc(rows: JoinedRows, config: GbdtConfig) -> tuple[float, float]:
    """XGBoost ``hist`` with the same hyper-parameters: (test AUC, training seconds)."""
    import xgboost
    from sklearn.metrics import roc_auc_score

    values, types = rows.raw()
    train = xgboost.DMatrix(
        values[rows.train], rows.labels[rows.train], feature_types=types, enable_categorical=True
    )
    test = xgboost.DMatrix(values[rows.test], feature_types=types, enable_categorical=True)
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "max_depth": config.depth,
        "eta": config.learning_rate,
        "max_bin": config.bins,
        "min_child_weight": config.min_child_weight,
        "lambda": config.l2,
        "gamma": config.gamma,
        "subsample": config.subsample,
        "colsample_bytree": config.colsample,
        "base_score": 1 / (1 + math.exp(-base_margin(rows.labels[rows.train]))),
        "seed": config.seed,
        "nthread": 1,
    }
    started = time.perf_counter()
    booster = xgboost.train(params, train, num_boost_round=config.trees)
    seconds = time.perf_counter() - started
    return float(roc_auc_score(rows.labels[rows.test], booster.predict(test))), seconds


def add_tree_baselines(out: Path, wallet: Table, network: Table, config: GbdtConfig) -> None:
    """Add the plaintext references to the run's metrics.json (written last, atomically) and the
    same-algorithm reference's ROC to the wallet's report (one hand holds both files here: the
    one-command launcher)."""
    from blindgate.pets.ml.gbdt.flow import GbdtResult, write_tree_report

    rows = join(wallet, network, config)
    metrics: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    reference = same_algorithm_reference(rows, config)
    metrics["plaintext_same_algorithm_auc"] = reference["auc"]
    try:
        metrics["plaintext_xgboost_auc"], metrics["plaintext_xgboost_seconds"] = xgboost_auc(rows, config)
    except ImportError:
        metrics["plaintext_xgboost_auc"] = None  # xgboost is a dev dependency, not a pets one
    view = json.loads((out / "view-wallet.json").read_text())
    write_tree_report(out / "report-wallet.html", GbdtResult("wallet", {}, view, metrics), reference)
    write_json(out / "metrics.json", metrics)
