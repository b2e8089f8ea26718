"""Tree-model files: each party's part of a jointly trained ensemble, and what it saw.

``model-wallet.json`` holds the wallet's binning, the tree shapes (who splits each node),
the wallet's splits and the leaf values; ``model-network.json`` holds the network's
binning and its splits only. A split is stored as the bin codes that go left (the
missing code among them when missing values go left). Both name the same random
``model_id``, which prediction checks. Neither file holds a row, an id or a label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.pets.ml.errors import DataError
from blindgate.pets.ml.gbdt.binning import Binning
from blindgate.pets.ml.gbdt.protocol import NetworkSplits
from blindgate.pets.ml.gbdt.trees import Ensemble, GbdtConfig, Tree

MODEL_FORMAT = "blindgate-gbdt/1"


def _codes(left: np.ndarray) -> list[int]:
    return [int(c) for c in np.nonzero(left)[0]]


def _table(codes: list[int], bins: int) -> np.ndarray:
    left = np.zeros(bins + 1, dtype=bool)
    if any(not 0 <= c <= bins for c in codes):
        raise ValueError("a split code out of range")
    left[codes] = True
    return left


@dataclass
class WalletModel:
    model_id: str
    config: GbdtConfig
    binning: Binning
    ensemble: Ensemble
    id_column: str

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "role": "wallet",
            "model_id": self.model_id,
            "id_column": self.id_column,
            "config": self.config.to_json(),
            "binning": self.binning.to_json(),
            "base": self.ensemble.base,
            "network_splits": len(self.ensemble.network_nodes()),
            "trees": [
                {
                    "owner": tree.owner.tolist(),
                    "feature": tree.feature.tolist(),
                    "left": {str(n): _codes(tree.left[n]) for n in np.nonzero(tree.feature >= 0)[0]},
                    "value": tree.value.tolist(),
                }
                for tree in self.ensemble.trees
            ],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> WalletModel:
        config = GbdtConfig(**obj["config"])
        bins = config.bins
        trees = []
        for raw in obj["trees"]:
            tree = Tree.empty(config.depth, bins)
            tree.owner[:] = raw["owner"]
            tree.feature[:] = raw["feature"]
            tree.value[:] = raw["value"]
            for node, codes in raw["left"].items():
                tree.left[int(node)] = _table(codes, bins)
            trees.append(tree)
        ensemble = Ensemble(float(obj["base"]), trees)
        if len(ensemble.network_nodes()) != int(obj["network_splits"]):
            raise ValueError("inconsistent tree shapes")
        return cls(
            str(obj["model_id"]), config, Binning.from_json(obj["binning"]), ensemble, str(obj["id_column"])
        )


@dataclass
class NetworkModel:
    model_id: str
    config: GbdtConfig
    binning: Binning
    trees: int
    splits: NetworkSplits

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "role": "network",
            "model_id": self.model_id,
            "config": self.config.to_json(),
            "binning": self.binning.to_json(),
            "trees": self.trees,
            "splits": [
                {"tree": t, "node": n, "feature": f, "left": _codes(left)}
                for (t, n), (f, left) in sorted(self.splits.splits.items())
            ],
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> NetworkModel:
        config = GbdtConfig(**obj["config"])
        binning = Binning.from_json(obj["binning"])
        splits = NetworkSplits()
        for raw in obj["splits"]:
            feature = int(raw["feature"])
            if not 0 <= feature < len(binning.columns):
                raise ValueError("a split on an unknown column")
            splits.splits[(int(raw["tree"]), int(raw["node"]))] = (feature, _table(raw["left"], config.bins))
        return cls(str(obj["model_id"]), config, binning, int(obj["trees"]), splits)


def model_format(path: Path) -> str | None:
    """The ``format`` field of a model file, or None when it is not readable JSON."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj.get("format") if isinstance(obj, dict) else None


def load_model(path: Path) -> WalletModel | NetworkModel:
    try:
        obj = json.loads(path.read_text())
        if not isinstance(obj, dict) or obj.get("format") != MODEL_FORMAT:
            raise DataError(f"{path.name} is not a blindgate tree-model file")
        if obj.get("role") == "wallet":
            return WalletModel.from_json(obj)
        if obj.get("role") == "network":
            return NetworkModel.from_json(obj)
        raise DataError(f"{path.name} names no party")
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(f"cannot read the tree-model file {path.name}") from exc
