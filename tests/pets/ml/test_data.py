"""Reading and encoding one party's table: bad input gets a clear error naming the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blindgate.pets.ml.data import DataError, check_range, encode, fit_encoding, read_table


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "party.csv"
    path.write_text(text)
    return path


def test_encoding_standardises_numbers_and_one_hot_encodes_categories(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "id,age,job,y\na,30,x,yes\nb,50,y,no\nc,40,x,1\n"), "id", "y")
    assert table.labels is not None and table.labels.tolist() == [1.0, 0.0, 1.0]
    encoding = fit_encoding(table)
    features = encode(table, encoding)
    assert encoding.feature_names == ["age", "job=x", "job=y"]
    assert np.allclose(features[:, 0].mean(), 0) and np.allclose(features[:, 0].std(), 1)
    assert features[:, 1:].tolist() == [[1, 0], [0, 1], [1, 0]]


@pytest.mark.parametrize(
    ("text", "label", "message"),
    [
        ("id,age\na,1\n", "y", "no label column 'y'"),
        ("id,age,y\na,1,\nb,2,no\n", "y", "label column 'y' is missing a value"),
        ("id,age,y\na,1,maybe\n", "y", "not 0/1 or yes/no"),
        ("id,age\na,1\na,2\n", None, "repeats ids"),
        ("id,age\na,1,3\n", None, "has 3 fields"),
        ("name,age\na,1\n", None, "no id column 'id'"),
    ],
)
def test_bad_tables_are_refused_with_the_cause(
    tmp_path: Path, text: str, label: str | None, message: str
) -> None:
    with pytest.raises(DataError, match=message):
        read_table(write(tmp_path, text), "id", label)


@pytest.mark.parametrize(
    ("cells", "message"),
    [("1\n2\nthree\n", "numeric column 'balance' holds a non-numeric value"), ("1\nnan\n3\n", "NaN")],
)
def test_bad_numeric_columns_name_the_column(tmp_path: Path, cells: str, message: str) -> None:
    rows = "".join(f"r{i},{value}\n" for i, value in enumerate(cells.split()))
    table = read_table(write(tmp_path, "id,balance\n" + rows), "id")
    with pytest.raises(DataError, match=message):
        fit_encoding(table)


def test_values_beyond_the_fixed_point_range_are_refused_by_column() -> None:
    with pytest.raises(DataError, match="'balance' exceeds the fixed-point range"):
        check_range(np.array([[1.0, 5000.0]]), ["age", "balance"], 1024.0)
    check_range(np.array([[1.0, 5.0]]), ["age", "balance"], 1024.0)
