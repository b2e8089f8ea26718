"""One party's columns as histogram bins: numeric quantile bins, categorical levels, missing.

Each party bins its own columns on its own rows; the bin edges and level lists stay with
it (they are in its model file only). Trees then split on bin codes, so the other party
never learns a threshold or a category name.

- A cell that is empty or one of ``MISSING_TOKENS`` is missing. Missing values get their
  own code (``bins``, one past the last real bin); each split learns which side they go to.
- A column whose every present value parses as a finite number is numeric: up to ``bins``
  quantile bins (each distinct value its own bin when there are few). Otherwise it is
  categorical: one bin per level, the most frequent ``bins - 1`` levels kept and the rarer
  ones pooled in one bin, so the caller never one-hot encodes.
- At prediction, a level not among a column's kept levels goes to its pooled bin when the
  column has one (such levels were rare in training too) and otherwise reads as missing;
  a column the scoring file lacks is an error, or (if the caller allows it) all missing.
  Missing values follow each split's learned default direction.
- A column with no present value, or a single distinct value, is refused: it cannot
  split and most often means a broken extract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from blindgate.pets.ml.data import Table
from blindgate.pets.ml.errors import DataError

MISSING_TOKENS = frozenset({"", "na", "nan", "n/a", "null", "none", "?"})
MAX_BINS = 126  # codes travel as int8 (the HE bucket sum's order map), missing included
POOLED_LEVEL = "(other levels)"


def is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING_TOKENS


def column_cells(table: Table, name: str) -> list[str]:
    """One column's cells as text ("" where missing): the one place that knows a Table's layout."""
    return ["" if value is None else str(value) for value in table.frame[name].tolist()]


@dataclass(frozen=True)
class ColumnBins:
    """How one raw column maps to codes: ``edges`` for numeric, ``levels`` for categorical."""

    name: str
    categorical: bool
    edges: tuple[float, ...] = ()  # numeric: code = number of edges below the value
    levels: tuple[str, ...] = ()  # categorical: code = position; POOLED_LEVEL last if pooled

    @property
    def count(self) -> int:
        return len(self.levels) if self.categorical else len(self.edges) + 1

    def codes(self, cells: list[str], missing_code: int) -> np.ndarray:
        if self.categorical:
            position = {level: k for k, level in enumerate(self.levels)}
            pooled = position.get(POOLED_LEVEL, missing_code)
            return np.array(
                [
                    missing_code if is_missing(c) else position.get(c, pooled if c else missing_code)
                    for c in cells
                ],
                dtype=np.int8,
            )
        values = _numbers(cells, self.name)
        codes = np.searchsorted(np.array(self.edges), values, side="left").astype(np.int8)
        codes[np.isnan(values)] = missing_code
        return codes

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "categorical": self.categorical,
            "edges": self.edges,
            "levels": self.levels,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ColumnBins:
        return cls(
            str(obj["name"]),
            bool(obj["categorical"]),
            tuple(float(e) for e in obj["edges"]),
            tuple(str(v) for v in obj["levels"]),
        )


def _numbers(cells: list[str], column: str) -> np.ndarray:
    """Floats with NaN for missing cells; a non-numeric present value is an error."""
    values = np.empty(len(cells))
    for i, cell in enumerate(cells):
        if is_missing(cell):
            values[i] = math.nan
            continue
        try:
            values[i] = float(cell)
        except ValueError:
            raise DataError(f"numeric column {column!r} holds a non-numeric value") from None
        if not math.isfinite(values[i]):
            raise DataError(f"numeric column {column!r} holds an infinite value")
    return values


def _parses(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def fit_column(name: str, cells: list[str], bins: int) -> ColumnBins:
    present = [c for c in cells if not is_missing(c)]
    if not present:
        raise DataError(f"column {name!r} has no values (all missing)")
    if len(set(present)) < 2:
        raise DataError(f"column {name!r} is constant: it cannot split; drop it")
    if all(map(_parses, present)):
        values = np.array([float(c) for c in present])
        distinct = np.unique(values)
        if len(distinct) < 2:
            raise DataError(f"column {name!r} is constant: it cannot split; drop it")
        if len(distinct) <= bins:
            edges = (distinct[:-1] + distinct[1:]) / 2  # each distinct value its own bin
        else:
            cuts = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1], method="lower")
            edges = np.unique(cuts)
            edges = edges[edges < distinct[-1]]  # the top edge must leave a non-empty last bin
        return ColumnBins(name, False, edges=tuple(float(e) for e in edges))
    levels, counts = np.unique(np.array(present), return_counts=True)
    by_frequency = [str(levels[k]) for k in np.lexsort((levels, -counts))]
    if len(by_frequency) > bins:
        by_frequency = [*by_frequency[: bins - 1], POOLED_LEVEL]
    return ColumnBins(name, True, levels=tuple(by_frequency))


@dataclass(frozen=True)
class Binning:
    """All of one party's columns; ``bins`` is the per-column maximum and the missing code."""

    columns: tuple[ColumnBins, ...]
    bins: int

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def counts(self) -> np.ndarray:
        return np.array([c.count for c in self.columns], dtype=np.int64)

    @property
    def categorical(self) -> np.ndarray:
        return np.array([c.categorical for c in self.columns], dtype=bool)

    def transform(self, table: Table, allow_missing_columns: bool = False) -> np.ndarray:
        """Codes (rows x columns, int8); ``bins`` marks a missing value."""
        codes = np.full((len(table.ids), len(self.columns)), self.bins, dtype=np.int8)
        for j, column in enumerate(self.columns):
            if column.name not in table.columns:
                if allow_missing_columns:
                    continue  # every row reads as missing: the learned default direction
                raise DataError(f"the table lacks the column {column.name!r} the model was trained on")
            codes[:, j] = column.codes(column_cells(table, column.name), self.bins)
        return codes

    def to_json(self) -> dict[str, Any]:
        return {"bins": self.bins, "columns": [c.to_json() for c in self.columns]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Binning:
        return cls(tuple(ColumnBins.from_json(c) for c in obj["columns"]), int(obj["bins"]))


def fit_binning(table: Table, bins: int) -> Binning:
    if not 2 <= bins <= MAX_BINS:
        raise DataError(f"bins must be between 2 and {MAX_BINS}")
    if not table.columns:
        raise DataError("the table has no feature column")
    return Binning(tuple(fit_column(name, column_cells(table, name), bins) for name in table.columns), bins)
