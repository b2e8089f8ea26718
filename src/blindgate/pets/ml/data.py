"""One party's table: read its file, check it, and encode it for a model — on pandas and scikit-learn.

Model-independent: logistic regression uses it, and any other model type reads the same
``Table`` and ``Encoding``. Each party prepares its own columns on its own data, so
nothing about its value distribution leaves it.

Reading (pandas): CSV in any encoding Python knows (``--encoding``, default UTF-8; a
byte-order mark is dropped), RFC 4180 quoting, or Parquet. Every cell is read as text
first and typed afterwards, so a phone number keeps its leading ``+``/``0``.

The rules, stated once (docs/ml.md, "Data preparation"):

- **ids**: normalised with the PSI's rules (``trim``, ``lower``, ``email``, ``e164``;
  phone numbers through ``phonenumbers`` with ``--region`` for national formats, emails
  through ``email-validator``). A row whose id is empty or invalid is left out, counted.
- **duplicates**: the first row of an id is kept, later rows with the same id are left
  out and counted — the same rule as ``blindgate psi``.
- **columns**: ``--features`` keeps only the named ones, ``--drop`` removes some. A column
  is numeric when every present value parses as a number and it does not look like an
  identifier (leading ``+`` or ``0`` with 7 or more digits, as phone numbers); columns
  named in ``--categorical`` are categorical whatever they hold. A text column with more
  than ``max_levels`` distinct values (a name, an email) is excluded and named, unless
  named in ``--categorical``.
- **missing values** (empty, NA, N/A, null, NaN, None): numeric columns take the
  training median and gain a 0/1 "was missing" feature (scikit-learn ``SimpleImputer``
  with ``add_indicator``); categorical columns treat missing as a level of its own.
- **encoding**: numeric columns standardised (``StandardScaler``), categorical columns
  one-hot (``OneHotEncoder``). **Unseen levels** at prediction encode as all zeros —
  the column then adds nothing to the score — and are counted per column and reported.

Errors name the file, the column, how many rows and the first line numbers (line 1 is
the header; a quoted field spanning lines shifts later numbers), never a cell's value:
values are personal data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from blindgate.pets.ml.errors import DataError

if TYPE_CHECKING:
    import pandas as pd


MISSING = ("", "NA", "N/A", "n/a", "na", "null", "NULL", "NaN", "nan", "None", "none")
MISSING_LEVEL = "(missing)"
UNSEEN_RULE = "encoded as all zeros, so the column adds nothing to that row's score"
MAX_LEVELS = 50
POSITIVE_LABELS = {"1", "yes", "true", "y", "t"}
NEGATIVE_LABELS = {"0", "no", "false", "n", "f"}
_SHOWN_LINES = 5


def lines_text(lines: Sequence[int]) -> str:
    """``line 4`` / ``lines 4, 9, 12, ...``: the first few line numbers of a problem."""
    shown = ", ".join(str(n) for n in lines[:_SHOWN_LINES])
    more = ", ..." if len(lines) > _SHOWN_LINES else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def problem(file: str, column: str | None, lines: Sequence[int], what: str) -> str:
    """One message shape for every data error: file, column, count, first lines."""
    where = f"{file}: column {column!r}: " if column is not None else f"{file}: "
    return f"{where}{len(lines)} row{'s' if len(lines) != 1 else ''} {what} ({lines_text(lines)})"


@dataclass(frozen=True)
class ColumnChoice:
    """The user's say over which columns become features (``--features``, ``--drop``, ``--categorical``)."""

    features: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    max_levels: int = MAX_LEVELS

    @classmethod
    def parse(cls, features: str | None, drop: str | None, categorical: str | None) -> ColumnChoice:
        def split(text: str | None) -> tuple[str, ...]:
            return tuple(c.strip() for c in (text or "").split(",") if c.strip())

        return cls(split(features), split(drop), split(categorical))


@dataclass
class PrepReport:
    """What preparation did to a party's rows and columns: counts and first lines, no values."""

    file: str
    rows_read: int = 0
    invalid_ids: list[int] = field(default_factory=list)
    duplicate_ids: list[int] = field(default_factory=list)
    excluded_columns: dict[str, str] = field(default_factory=dict)  # column -> why
    missing: dict[str, int] = field(default_factory=dict)  # column -> count of missing values
    unseen: dict[str, list[int]] = field(default_factory=dict)  # column -> lines (prediction)

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows_read": self.rows_read,
            "rows_used": self.rows_read - len(self.invalid_ids) - len(self.duplicate_ids),
            "invalid_ids": {"count": len(self.invalid_ids), "first_lines": self.invalid_ids[:_SHOWN_LINES]},
            "duplicate_ids": {
                "count": len(self.duplicate_ids),
                "first_lines": self.duplicate_ids[:_SHOWN_LINES],
                "rule": "the first row of an id is kept, later ones are left out",
            },
            "excluded_columns": dict(self.excluded_columns),
            "missing_values": dict(self.missing),
            "unseen_levels": {
                c: {"count": len(v), "first_lines": v[:_SHOWN_LINES], "rule": UNSEEN_RULE}
                for c, v in self.unseen.items()
            },
        }

    def notes(self) -> list[str]:
        """One line per thing the user should know, for the terminal."""
        out: list[str] = []
        if self.invalid_ids:
            out.append(problem(self.file, None, self.invalid_ids, "have an empty or invalid id: left out"))
        if self.duplicate_ids:
            out.append(
                problem(
                    self.file, None, self.duplicate_ids, "repeat an earlier id: left out (first row kept)"
                )
            )
        out += [f"{self.file}: column {c!r} excluded: {why}" for c, why in self.excluded_columns.items()]
        for column, lines in self.unseen.items():
            out.append(problem(self.file, column, lines, f"hold a level unseen in training, {UNSEEN_RULE}"))
        return out


@dataclass(frozen=True)
class Table:
    """Rows of one party, keyed by normalised id, with the label split off when this party holds it."""

    ids: list[str]
    frame: pd.DataFrame  # text cells of the candidate feature columns; missing values as None
    labels: np.ndarray | None  # float64 0/1, or None
    lines: np.ndarray  # the file line of each row (int64)
    report: PrepReport

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


def read_frame(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """Every cell as text (None where missing), header names stripped; CSV or Parquet."""
    import pandas as pd

    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame = pd.read_parquet(path).astype(object)
        else:
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                encoding="utf-8-sig" if encoding.lower().replace("_", "-") in {"utf-8", "utf8"} else encoding,
                index_col=False,  # a row with one field too many is an error, not an index
            )
    except FileNotFoundError:
        raise DataError(f"{path.name}: file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path.name}: not {encoding} text (give its encoding with --encoding)") from None
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path.name}: not a valid CSV file ({_parser_cause(exc)})") from None
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"{path.name}: cannot be read ({exc.__class__.__name__})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    repeated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if repeated or any(str(c).startswith("Unnamed: ") for c in frame.columns):
        raise DataError(f"{path.name}: the header repeats or leaves out column names ({', '.join(repeated)})")
    cells = frame.astype(object).map(
        lambda v: None if pd.isna(v) or str(v).strip() in MISSING else str(v).strip()
    )
    cells = cells.astype(object)
    cells = cells.where(cells.notna(), None)  # one marker for missing, whatever pandas inferred
    return cells


def _parser_cause(exc: Exception) -> str:
    # pandas' messages name line numbers and field counts, never cell values.
    return str(exc).strip().split("\n")[0][:200]


def read_table(
    path: Path,
    id_column: str,
    label_column: str | None = None,
    *,
    rules: Sequence[str] = ("trim",),
    region: str | None = None,
    columns: ColumnChoice | None = None,
    encoding: str = "utf-8",
    keep_label: bool = False,
) -> Table:
    """Read a party's file: normalised unique ids (first row kept), a 0/1 label, candidate features.

    ``keep_label``: prediction ignores a label column rather than requiring it.
    """
    frame = read_frame(path, encoding)
    name = path.name
    if frame.empty:
        raise DataError(f"{name}: the file has no rows")
    found = ", ".join(frame.columns)
    if id_column not in frame.columns:
        raise DataError(f"{name}: no id column {id_column!r} (columns found: {found})")
    if label_column is not None and label_column not in frame.columns and not keep_label:
        raise DataError(f"{name}: no label column {label_column!r} (columns found: {found})")
    report = PrepReport(name, rows_read=len(frame))
    lines = np.arange(2, len(frame) + 2, dtype=np.int64)
    ids = _normalised_ids(frame[id_column], rules, region)
    keep = np.array([i is not None for i in ids])
    report.invalid_ids = lines[~keep].tolist()
    seen: set[str] = set()
    for position in np.flatnonzero(keep):
        if ids[position] in seen:
            keep[position] = False
            report.duplicate_ids.append(int(lines[position]))
        seen.add(str(ids[position]))
    labels = None
    if label_column is not None and label_column in frame.columns and not keep_label:
        labels = _labels(frame[label_column][keep], lines[keep], name, label_column)
    chosen = _choose_columns(frame, name, id_column, label_column, columns or ColumnChoice())
    kept = chosen[keep].reset_index(drop=True)
    report.missing = {c: int(n) for c, n in kept.isna().sum().items() if n}
    return Table([str(i) for i, k in zip(ids, keep, strict=True) if k], kept, labels, lines[keep], report)


def _normalised_ids(values: pd.Series, rules: Sequence[str], region: str | None) -> list[str | None]:
    from blindgate.pets.psi.inputs import normalise

    return [
        None if missing else normalise(str(v), rules, region)
        for v, missing in zip(values, values.isna(), strict=True)
    ]


def _labels(values: pd.Series, lines: np.ndarray, file: str, column: str) -> np.ndarray:
    missing = values.isna().to_numpy()
    text = values.fillna("").map(lambda v: str(v).strip().lower())
    if missing.any():
        raise DataError(problem(file, column, lines[missing].tolist(), "have no label value"))
    known = text.isin(POSITIVE_LABELS | NEGATIVE_LABELS).to_numpy()
    if not known.all():
        raise DataError(
            problem(file, column, lines[~known].tolist(), "hold a label that is not 0/1 or yes/no")
        )
    return text.isin(POSITIVE_LABELS).to_numpy().astype(np.float64)


def _choose_columns(
    frame: pd.DataFrame, file: str, id_column: str, label_column: str | None, choice: ColumnChoice
) -> pd.DataFrame:
    named = [*choice.features, *choice.drop, *choice.categorical]
    unknown = [c for c in named if c not in frame.columns]
    if unknown:
        raise DataError(
            f"{file}: no column {unknown[0]!r} named in --features/--drop/--categorical "
            f"(columns found: {', '.join(frame.columns)})"
        )
    reserved = {id_column, label_column}
    chosen = [c for c in (choice.features or frame.columns) if c not in reserved and c not in choice.drop]
    return frame[chosen]


@dataclass(frozen=True)
class Encoding:
    """How raw columns became features, fitted with scikit-learn on the training rows.

    Stored as plain numbers in the model file so that prediction encodes new rows the
    same way without unpickling anything.
    """

    numeric: dict[str, tuple[float, float, float]]  # column -> (median, mean, scale) of the training rows
    indicators: list[str]  # numeric columns that had missing values: a 0/1 feature each
    categorical: dict[str, list[str]]  # column -> levels, in feature order
    order: list[str]  # kept columns in input order
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why

    @property
    def feature_names(self) -> list[str]:
        names: list[str] = []
        for column in self.order:
            if column in self.numeric:
                names.append(column)
            else:
                names += [f"{column}={value}" for value in self.categorical[column]]
        return names + [f"{column} (missing)" for column in self.indicators]

    def to_json(self) -> dict[str, object]:
        return {
            "numeric": {k: list(v) for k, v in self.numeric.items()},
            "indicators": self.indicators,
            "categorical": self.categorical,
            "order": self.order,
            "excluded": self.excluded,
            "unseen_rule": UNSEEN_RULE,
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Encoding:
        numeric = {str(k): (float(v[0]), float(v[1]), float(v[2])) for k, v in dict(obj["numeric"]).items()}
        categorical = {str(k): [str(x) for x in v] for k, v in dict(obj["categorical"]).items()}
        return cls(
            numeric,
            [str(c) for c in obj.get("indicators", [])],
            categorical,
            [str(c) for c in obj["order"]],
            {str(k): str(v) for k, v in dict(obj.get("excluded", {})).items()},
        )


def _looks_like_identifier(values: pd.Series) -> bool:
    """Phone numbers and account numbers: a leading ``+`` or ``0`` and 7 or more digits."""
    digits = values.str.replace(r"[\s\-.()]", "", regex=True)
    return bool(digits.str.fullmatch(r"(\+|0)\d{6,}").mean() > 0.5)


def fit_encoding(table: Table, choice: ColumnChoice | None = None) -> Encoding:
    """Type each column, fit imputers, scalers and encoders on ``table``; errors name column and lines."""
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    choice = choice or ColumnChoice()
    numeric: dict[str, tuple[float, float, float]] = {}
    indicators: list[str] = []
    categorical: dict[str, list[str]] = {}
    excluded: dict[str, str] = {}
    order: list[str] = []
    for column in table.columns:
        values = table.frame[column]
        present = values.dropna()
        if present.empty:
            excluded[column] = "every value is missing"
            continue
        as_numbers = pd.to_numeric(present, errors="coerce")
        if column not in choice.categorical and not _looks_like_identifier(present):
            bad = as_numbers.isna() | ~np.isfinite(as_numbers.fillna(0).astype(float))
            if not bad.any():
                column_values = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)[:, None]
                imputer = SimpleImputer(strategy="median").fit(column_values)
                filled = imputer.transform(column_values)
                scaler = StandardScaler().fit(filled)
                numeric[column] = (
                    float(imputer.statistics_[0]),
                    float(scaler.mean_[0]),
                    float(scaler.scale_[0]),
                )
                if values.isna().any():
                    indicators.append(column)
                order.append(column)
                continue
            if bad.mean() < 0.5:  # mostly numbers: a few bad cells, not a text column
                lines = table.lines[present.index[bad.to_numpy()]].tolist()
                raise DataError(
                    problem(
                        table.report.file,
                        column,
                        lines,
                        "hold a value that is not a finite number; fix them, or name the column "
                        "in --categorical or --drop",
                    )
                )
        levels = present.nunique()
        if levels > choice.max_levels and column not in choice.categorical:
            excluded[column] = (
                f"text with {levels} distinct values (more than {choice.max_levels}): an identifier or free "
                "text, not a category; name it in --categorical to encode it anyway, or --drop it"
            )
            continue
        encoder = OneHotEncoder(handle_unknown="ignore").fit(values.fillna(MISSING_LEVEL).to_frame())
        categorical[column] = [str(v) for v in encoder.categories_[0]]
        order.append(column)
    if not order:
        raise DataError(f"{table.report.file}: no usable feature column (excluded: {', '.join(excluded)})")
    table.report.excluded_columns.update(excluded)
    return Encoding(numeric, indicators, categorical, order, excluded)


def encode(table: Table, encoding: Encoding) -> np.ndarray:
    """Float64 features in ``encoding.feature_names`` order; unseen levels are counted in the report."""
    import pandas as pd

    missing = [column for column in encoding.order if column not in table.columns]
    if missing:
        raise DataError(
            f"{table.report.file}: no column {missing[0]!r}, which the model was trained on "
            f"(columns found: {', '.join(table.columns)})"
        )
    blocks: list[np.ndarray] = []
    for column in encoding.order:
        values = table.frame[column]
        if column in encoding.numeric:
            median, mean, scale = encoding.numeric[column]
            numbers = pd.to_numeric(values, errors="coerce")
            bad = (numbers.isna() & values.notna()).to_numpy()
            if bad.any():
                raise DataError(
                    problem(
                        table.report.file,
                        column,
                        table.lines[bad].tolist(),
                        "hold a value that is not a number",
                    )
                )
            filled = numbers.fillna(median).to_numpy(dtype=float)
            blocks.append(((filled - mean) / (scale if scale > 0 else 1.0))[:, None])
        else:
            levels = encoding.categorical[column]
            codes = pd.Index(levels).get_indexer(values.fillna(MISSING_LEVEL))  # -1: unseen
            unseen = codes < 0
            if unseen.any():
                table.report.unseen[column] = sorted(table.lines[unseen].tolist())
            onehot = np.zeros((len(values), len(levels)))
            onehot[np.flatnonzero(~unseen), codes[~unseen]] = 1.0
            blocks.append(onehot)
    blocks += [table.frame[c].isna().to_numpy(dtype=float)[:, None] for c in encoding.indicators]
    return np.hstack(blocks) if blocks else np.zeros((len(table.ids), 0))


def check_range(features: np.ndarray, names: list[str], bound: float, table: Table | None = None) -> None:
    """Refuse features that would overflow the fixed-point range, naming the column and lines."""
    if features.size == 0:
        return
    over = ~np.isfinite(features) | (np.abs(features) > bound)
    for j in np.flatnonzero(over.any(axis=0)):
        column = names[j].split("=")[0]
        what = (
            f"exceed the fixed-point range after standardising (|x| up to {bound:g} is supported): "
            "clip or transform it first"
        )
        if table is not None:
            raise DataError(problem(table.report.file, column, table.lines[over[:, j]].tolist(), what))
        raise DataError(f"column {column!r}: values {what}")
    assert math.isfinite(bound)


def subset_rows(table: Table, rows: Sequence[int]) -> Table:
    """The rows at ``rows`` (positions), in that order, with the same report."""
    index = np.asarray(rows, dtype=np.int64)
    labels = table.labels[index] if table.labels is not None else None
    frame = table.frame.iloc[index].reset_index(drop=True)
    return Table([table.ids[i] for i in index], frame, labels, table.lines[index], table.report)
