"""Model evaluation on secret shares: the label holder gets AUC, KS and a lift table, not per-row scores.

The scores stay shared; the wallet (label holder) holds the labels in clear. The network
picks a random permutation pi, and the two run the project's permute-and-share
(``psi.permute_share``, an oblivious switching network over OT) on the wallet's inputs
(its score shares and its labels), so both hold XOR shares of them in pi's order, which
only the network knows. Each 64-bit XOR sharing becomes an additive one (x = a + b - 2ab
bit by bit: one Beaver product per bit, all in one round), the network adds its own score
shares in pi's order, and the wallet receives the (score, label) pairs in that order.

**What leaks.** The wallet learns the multiset of (score, label) pairs of the test rows:
for each class, the sorted scores, unlinked to customers — exactly what a full-resolution
ROC curve discloses, and what AUC, KS, lift and gain are computed from. It does not learn
which customer has which score (its view before the last frame is uniform and independent
of pi; the last frame is the pairs in pi's order). The network learns nothing (its inputs
to permute-and-share are the permutation; the Beaver openings are masked). Semi-honest,
like the rest of the engine. Hand-written: no library offers this on our shares.
"""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np

from blindgate.pets.ml.logreg import WALLET
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor, beaver_mul

_BITS = np.arange(64, dtype=np.uint64)
LIFT_BINS = 10


def _random_permutation(n: int) -> np.ndarray:
    order = np.arange(n, dtype=np.int64)
    for i in range(n - 1, 0, -1):  # Fisher-Yates on the OS CSPRNG: pi must be unpredictable
        j = secrets.randbelow(i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def _xor_to_additive(party: Party, xor_share: np.ndarray, bits: int) -> np.ndarray:
    """Additive shares of x where x = a ^ b (a at party 1, b at party 0); ``bits`` low bits only."""
    planes = ((xor_share[:, None] >> _BITS[:bits]) & np.uint64(1)).astype(np.uint64)
    zero = np.zeros_like(planes)
    left, right = (planes, zero) if party.party == 0 else (zero, planes)
    both = beaver_mul(party, left, right)  # shares of a_i * b_i, one round for every bit at once
    weights = np.uint64(1) << _BITS[:bits]
    with np.errstate(over="ignore"):
        per_bit = planes - np.uint64(2) * both
        return (per_bit * weights).sum(axis=1, dtype=np.uint64)


def reveal_shuffled(
    party: Party, scores: SharedTensor, labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The wallet gets (scores, labels) of every row in a random order it cannot undo; the network None.

    ``scores``: shared fixed-point values, shape (n, 1) or (n,). ``labels``: the wallet's 0/1
    labels (None at the network). Three steps: permute-and-share (2 * ceil(log2 2n) - 1
    round trips), one Beaver round, one frame to the wallet.
    """
    from blindgate.pets.psi.permute_share import permute_as_chooser, permute_as_holder

    share = scores.share.reshape(-1)
    n = share.size
    with party.op("evaluate"):
        if party.party == WALLET:
            assert labels is not None and labels.size == n
            packed = np.concatenate([share, labels.reshape(-1).astype(np.uint64)])
            mine = permute_as_holder(party.peer, packed)
            own_score_part: np.ndarray | None = None
        else:
            perm = _random_permutation(n)
            mine = permute_as_chooser(party.peer, np.concatenate([perm, perm + n]))
            own_score_part = share[perm]
        score_share = _xor_to_additive(party, mine[:n], 64)
        label_share = _xor_to_additive(party, mine[n:], 1)
        if own_score_part is not None:
            score_share = score_share + own_score_part
        both = np.concatenate([score_share, label_share])
        if party.party != WALLET:
            party.peer.send_array(both)
            return None
        theirs = party.peer.recv_array(np.uint64, (2 * n,))
        opened = both + theirs
        values = party.fixed.decode(opened[:n])
        return np.asarray(values, dtype=np.float64), opened[n:].astype(np.float64)


def metrics(scores: np.ndarray, labels: np.ndarray, wanted: tuple[str, ...]) -> dict[str, Any]:
    """AUC, KS and a decile lift table from (score, label) pairs, in any order."""
    from sklearn.metrics import roc_auc_score, roc_curve

    out: dict[str, Any] = {}
    fpr, tpr, _ = roc_curve(labels, scores)
    if "auc" in wanted:
        out["auc"] = float(roc_auc_score(labels, scores))
    if "ks" in wanted:
        out["ks"] = float(np.max(tpr - fpr))
    if "lift" in wanted:
        out["lift"] = lift_table(scores, labels)
    out["roc"] = {"fpr": fpr.tolist(), "tpr": tpr.tolist()}
    return out


def lift_table(scores: np.ndarray, labels: np.ndarray, bins: int = LIFT_BINS) -> list[dict[str, float]]:
    """Rows sorted by score, highest first, cut into ``bins`` equal groups: rate, lift, cumulative gain."""
    order = np.argsort(-scores, kind="stable")
    sorted_labels = labels[order]
    base = float(labels.mean()) if labels.size else 0.0
    total_positive = float(labels.sum()) or 1.0
    table, taken = [], 0.0
    for k, group in enumerate(np.array_split(sorted_labels, bins), start=1):
        if group.size == 0:
            continue
        rate = float(group.mean())
        taken += float(group.sum())
        table.append(
            {
                "decile": k,
                "rows": int(group.size),
                "positive_rate": rate,
                "lift": rate / base if base else 0.0,
                "cumulative_gain": taken / total_positive,
            }
        )
    return table
