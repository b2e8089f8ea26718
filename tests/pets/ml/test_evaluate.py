"""Metrics on shares: the label holder gets AUC/KS/lift equal to plaintext, in an order it cannot undo."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from blindgate.pets.ml.evaluate import lift_table, metrics, reveal_shuffled
from blindgate.pets.mpc.local import run_pair
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor

RNG = np.random.default_rng(11)


@pytest.mark.parametrize("mode", ["dealer", "dealer-free"])
def test_shuffled_reveal_gives_the_pairs_in_a_hidden_order(mode: str) -> None:
    rows = 300
    scores = RNG.normal(size=rows) * 3
    labels = (RNG.random(rows) < 1 / (1 + np.exp(-scores))).astype(float)

    def program(party: Party) -> tuple[np.ndarray, np.ndarray] | None:
        shared = SharedTensor.from_owner(party, 1, scores[:, None] if party.party == 1 else None, (rows, 1))
        return reveal_shuffled(party, shared, labels if party.party == 0 else None)

    wallet, network = run_pair(program, triples=mode, timeout=60)
    assert network is None
    assert wallet is not None
    got_scores, got_labels = wallet
    # The same multiset of (score, label) pairs, up to fixed-point rounding...
    for label in (0.0, 1.0):
        mine, theirs = np.sort(got_scores[got_labels == label]), np.sort(scores[labels == label])
        assert mine.shape == theirs.shape and np.abs(mine - theirs).max() < 1e-4
    # ...so the same metrics as plaintext,
    assert abs(roc_auc_score(got_labels, got_scores) - roc_auc_score(labels, scores)) < 1e-4
    # but not in the rows' order: the wallet cannot tell which customer has which score.
    assert np.abs(got_scores - scores).max() > 1.0
    assert np.corrcoef(got_scores, scores)[0, 1] < 0.3


def test_metrics_and_lift_table_on_a_known_ranking() -> None:
    scores = np.arange(100, dtype=float)
    labels = (scores >= 80).astype(float)  # the top fifth are the positives
    result = metrics(scores, labels, ("auc", "ks", "lift"))
    assert result["auc"] == 1.0 and result["ks"] == 1.0
    table = result["lift"]
    assert [row["positive_rate"] for row in table[:3]] == [1.0, 1.0, 0.0]
    assert table[0]["lift"] == 5.0 and table[1]["cumulative_gain"] == 1.0
    assert metrics(scores, labels, ("auc",)).keys() == {"auc", "roc"}
    assert len(lift_table(scores[:7], labels[:7])) == 7  # fewer rows than bins: no empty bins
