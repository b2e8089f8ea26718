"""One party's table: read its CSV, check it, and encode it for training.

Each party encodes its own columns on its own data (one-hot for categorical columns,
standardisation for numeric ones), so nothing about its value distribution leaves it.
Errors name the file, column or cause, never a cell's value: values are personal data.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blindgate.pets.ml.errors import DataError


@dataclass(frozen=True)
class Table:
    """Rows of one party, keyed by id, with the label split off when this party holds it."""

    ids: list[str]
    columns: list[str]
    cells: list[list[str]]  # row-major, without the id and label columns
    labels: np.ndarray | None  # float64 0/1, or None


@dataclass(frozen=True)
class Encoding:
    """How raw columns became features: kept so prediction encodes new rows the same way."""

    numeric: dict[str, tuple[float, float]]  # column -> (mean, std)
    categorical: dict[str, list[str]]  # column -> categories, in feature order
    order: list[str]  # raw columns in input order

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for column in self.order:
            if column in self.numeric:
                names.append(column)
            else:
                names += [f"{column}={value}" for value in self.categorical[column]]
        return names

    def to_json(self) -> dict[str, object]:
        return {"numeric": self.numeric, "categorical": self.categorical, "order": self.order}

    @classmethod
    def from_json(cls, obj: dict[str, object]) -> Encoding:
        numeric = {k: (float(v[0]), float(v[1])) for k, v in dict(obj["numeric"]).items()}  # type: ignore[call-overload]
        categorical = {k: list(v) for k, v in dict(obj["categorical"]).items()}  # type: ignore[call-overload]
        return cls(numeric, categorical, list(obj["order"]))  # type: ignore[call-overload]


POSITIVE_LABELS = {"1", "yes", "true", "y", "t"}
NEGATIVE_LABELS = {"0", "no", "false", "n", "f"}


def read_table(path: Path, id_column: str, label_column: str | None = None) -> Table:
    """Read a party's CSV; the id column must be unique and non-empty, the label 0/1 or yes/no."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            rows = list(reader)
    except OSError as exc:
        raise DataError(f"cannot read {path.name}: {exc.strerror}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path.name} is not a UTF-8 CSV file") from exc
    if not header:
        raise DataError(f"{path.name} is empty")
    if id_column not in header:
        raise DataError(f"{path.name} has no id column {id_column!r}")
    if label_column is not None and label_column not in header:
        raise DataError(f"{path.name} has no label column {label_column!r}")
    if len(set(header)) != len(header):
        raise DataError(f"{path.name} repeats a column name")
    id_at = header.index(id_column)
    label_at = header.index(label_column) if label_column is not None else -1
    keep = [i for i in range(len(header)) if i not in (id_at, label_at)]
    ids, cells, labels = [], [], []
    for line, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{path.name} line {line} has {len(row)} fields, the header has {len(header)}")
        ids.append(row[id_at].strip())
        cells.append([row[i].strip() for i in keep])
        if label_at >= 0:
            labels.append(_label(row[label_at], path.name, label_column or "", line))
    if not ids:
        raise DataError(f"{path.name} has no rows")
    if any(not i for i in ids):
        raise DataError(f"{path.name} has a row with an empty id in {id_column!r}")
    if len(set(ids)) != len(ids):
        raise DataError(f"{path.name} repeats ids in {id_column!r}")
    return Table(ids, [header[i] for i in keep], cells, np.array(labels) if label_at >= 0 else None)


def _label(raw: str, file: str, column: str, line: int) -> float:
    value = raw.strip().lower()
    if value in POSITIVE_LABELS:
        return 1.0
    if value in NEGATIVE_LABELS:
        return 0.0
    if not value:
        raise DataError(f"{file} line {line}: the label column {column!r} is missing a value")
    raise DataError(f"{file} line {line}: the label column {column!r} is not 0/1 or yes/no")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def fit_encoding(table: Table, categorical: set[str] | None = None) -> Encoding:
    """Numeric columns are those whose every value parses as a number, unless named categorical."""
    numeric: dict[str, tuple[float, float]] = {}
    categories: dict[str, list[str]] = {}
    for j, column in enumerate(table.columns):
        values = [row[j] for row in table.cells]
        if any(not v for v in values):
            raise DataError(f"column {column!r} has empty values")
        numeric_values = sum(map(_is_number, values))
        if categorical is not None and column in categorical:
            categories[column] = sorted(set(values))
            continue
        if 0 < numeric_values < len(values):
            raise DataError(f"numeric column {column!r} holds a non-numeric value")
        if numeric_values == len(values):
            numbers = np.array([float(v) for v in values])
            if not np.all(np.isfinite(numbers)):
                raise DataError(f"column {column!r} holds NaN or infinite values")
            std = float(numbers.std())
            numeric[column] = (float(numbers.mean()), std if std > 0 else 1.0)
        else:
            categories[column] = sorted(set(values))
    return Encoding(numeric, categories, list(table.columns))


def encode(table: Table, encoding: Encoding) -> np.ndarray:
    """Float64 features, one row per table row, in ``encoding.feature_names`` order."""
    missing = [column for column in encoding.order if column not in table.columns]
    if missing:
        raise DataError(f"the table lacks the column {missing[0]!r} the model was trained on")
    blocks: list[np.ndarray] = []
    for column in encoding.order:  # other columns (a label, extra fields) are ignored
        j = table.columns.index(column)
        values = [row[j] for row in table.cells]
        if column in encoding.numeric:
            blocks.append(_numeric(values, column, *encoding.numeric[column])[:, None])
        else:
            known = {value: k for k, value in enumerate(encoding.categorical[column])}
            onehot = np.zeros((len(values), len(known)))
            for i, value in enumerate(values):
                k = known.get(value)
                if k is not None:  # an unseen category encodes as all zeros
                    onehot[i, k] = 1.0
            blocks.append(onehot)
    if not blocks:
        return np.zeros((len(table.ids), 0))
    return np.hstack(blocks)


def _numeric(values: list[str], column: str, mean: float, std: float) -> np.ndarray:
    try:
        numbers = np.array([float(v) for v in values])
    except ValueError:
        raise DataError(f"numeric column {column!r} holds a non-numeric value") from None
    if not np.all(np.isfinite(numbers)):
        raise DataError(f"numeric column {column!r} holds NaN or infinite values")
    return (numbers - mean) / std


def check_range(features: np.ndarray, names: list[str], bound: float) -> None:
    """Refuse features that would overflow the fixed-point range during training."""
    if features.size == 0:
        return
    peak = np.abs(features).max(axis=0)
    for name, value in zip(names, peak, strict=True):
        if not math.isfinite(value) or value > bound:
            raise DataError(
                f"column {name.split('=')[0]!r} exceeds the fixed-point range after standardising "
                f"(|x| up to {bound:g} is supported): clip or transform it first"
            )
