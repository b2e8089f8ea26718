"""Secure prediction with a jointly held model: batch scoring and single-row scoring.

Each party holds its own feature columns in clear and its share of the weights (or the
weights in clear, if they were revealed to it). Features are shared without
communication, the logits come from one Beaver matrix product (one round, plus the
dealer's reply to party 1), and only the agreed party receives them. It turns them into
probabilities in clear: a logit and its sigmoid carry the same information.

What each party sees: which of its ids the other holds (PSI join: pseudonymous data), masked
openings (secret shares), and, as the signed output policy says, the wallet either each
row's score (``scores=per-row``: pseudonymous data, per id) or only the distribution of
the scores, in an order it cannot undo (``aggregate``, ``evaluate.reveal_shuffled``).
Rows come back in the wallet's input order; a row the peer does not hold is not scored,
and counted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.net import MalformedFrame
from blindgate.pets.ml.data import Encoding, Table, check_range, encode, subset_rows
from blindgate.pets.ml.errors import DataError
from blindgate.pets.ml.joint import FEATURE_BOUND, ROLES, align
from blindgate.pets.ml.logreg import WALLET
from blindgate.pets.mpc.runtime import Party
from blindgate.pets.mpc.tensor import SharedTensor

MODEL_FORMAT = "blindgate-ss-logreg/1"
SCORE_CHUNK = 8192  # rows per Beaver product at prediction: bounds memory, and paces the progress bar

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModelShare:
    role: str
    frac_bits: int
    widths: tuple[int, int]
    encoding: Encoding
    weights_share: np.ndarray  # uint64, (wallet width + network width, 1)

    @classmethod
    def load(cls, path: Path) -> ModelShare:
        try:
            obj: dict[str, Any] = json.loads(path.read_text())
            if obj.get("format") != MODEL_FORMAT:
                raise DataError(f"{path.name} is not a blindgate model file")
            widths = (int(obj["features"]["wallet"]), int(obj["features"]["network"]))
            share = np.array([int(v) for v in obj["weights_share"]], dtype=np.uint64).reshape(-1, 1)
            if share.shape[0] != sum(widths):
                raise DataError(f"{path.name} holds a weight share of the wrong length")
            return cls(
                str(obj["role"]), int(obj["frac_bits"]), widths, Encoding.from_json(obj["encoding"]), share
            )
        except DataError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"cannot read the model file {path.name}") from exc

    def features(self, table: Table) -> np.ndarray:
        """Encoded as in training; levels unseen in training are counted in ``table.report``."""
        features = encode(table, self.encoding)
        if self.role == "wallet":
            features = np.hstack([features, np.ones((len(table.ids), 1))])
        check_range(
            features,
            [*self.encoding.feature_names, *(["(bias)"] if self.role == "wallet" else [])],
            FEATURE_BOUND,
            table,
        )
        return features


def check_peer_model(party: Party, model: ModelShare) -> None:
    mine = json.dumps({"role": model.role, "widths": list(model.widths)}).encode()
    try:
        theirs = json.loads(party.peer.exchange(mine))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFrame("expected the peer's model summary") from exc
    if theirs.get("role") == model.role or theirs.get("widths") != list(model.widths):
        raise DataError("the two model files do not belong to the same trained model")


def score(party: Party, model: ModelShare, features: np.ndarray, to: int = WALLET) -> np.ndarray | None:
    """Probabilities for the aligned rows, to party ``to``; the other party gets None."""
    shared = _shared_features(party, model, features)
    with party.op("predict"):
        # Revealed untruncated and divided in clear: one round fewer than truncating on shares.
        raw = shared.matmul_raw(SharedTensor(model.weights_share, party))
        logits = raw.reveal(to=to, bits=2 * party.fixed.frac_bits)
    if logits is None:
        return None
    probabilities: np.ndarray = 0.5 * (1.0 + np.tanh(logits[:, 0] / 2.0))  # = 1 / (1 + e^-z), stable
    return probabilities


@dataclass
class Prediction:
    """One party's outcome: which of its rows were scored and, at the wallet, what it may see."""

    rows_scored: list[int]  # positions in the party's table, in the order both parties agreed
    scores: np.ndarray | None = None  # per row, in ``rows_scored`` order (policy scores=per-row)
    distribution: np.ndarray | None = None  # the scores in an order it cannot undo (aggregate)
    costs: dict[str, Any] = field(default_factory=dict)


def predict_table(
    party: Party,
    model: ModelShare,
    table: Table,
    to: int = WALLET,
    alignment: str = "psi",
    scores: str = "per-row",
    progress: Progress | None = None,
) -> Prediction:
    """Align with the peer and score every shared row, as the policy's ``scores`` says.

    ``progress(stage, done, total)``: ``align`` (0/1, 1/1), ``score rows`` (rows done of the
    shared rows, in chunks of `SCORE_CHUNK`: both parties cut the same chunks, one Beaver
    round each), and with ``scores=aggregate`` ``reveal distribution`` (0/1, 1/1).
    """
    from blindgate.pets.ml.evaluate import reveal_shuffled

    tick = progress or (lambda stage, done, total: None)
    if ROLES[model.role] != party.party:
        raise DataError("this model file belongs to the other party")
    check_peer_model(party, model)
    tick("align", 0, 1)
    rows = align(party, table.ids, alignment)
    tick("align", 1, 1)
    if not rows:
        raise DataError("no ids are held by both parties")
    aligned = subset_rows(table, rows)  # both parties hold the same ids in the same (hash) order
    features = model.features(aligned)
    chunks = range(0, len(rows), SCORE_CHUNK)
    tick("score rows", 0, len(rows))
    if scores == "per-row":
        parts = []
        for start in chunks:
            parts.append(score(party, model, features[start : start + SCORE_CHUNK], to))
            tick("score rows", min(start + SCORE_CHUNK, len(rows)), len(rows))
        probabilities = None if parts[0] is None else np.concatenate([p for p in parts if p is not None])
        return Prediction(rows, probabilities)
    logit_shares = []
    for start in chunks:
        blocks = _shared_features(party, model, features[start : start + SCORE_CHUNK])
        with party.op("predict"):
            logit_shares.append((blocks @ SharedTensor(model.weights_share, party)).share)
        tick("score rows", min(start + SCORE_CHUNK, len(rows)), len(rows))
    logits = SharedTensor(np.concatenate(logit_shares), party)
    tick("reveal distribution", 0, 1)
    pairs = reveal_shuffled(party, logits, np.zeros(len(rows)) if party.party == WALLET else None)
    tick("reveal distribution", 1, 1)
    distribution = None if pairs is None else 0.5 * (1.0 + np.tanh(pairs[0] / 2.0))
    return Prediction(rows, None, distribution)


def _shared_features(party: Party, model: ModelShare, features: np.ndarray) -> SharedTensor:
    rows = features.shape[0]
    blocks = [
        SharedTensor.from_owner(
            party, owner, features if party.party == owner else None, (rows, width), "features"
        )
        for owner, width in enumerate(model.widths)
    ]
    return SharedTensor(np.hstack([b.share for b in blocks]), party)
