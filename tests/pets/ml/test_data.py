"""Data preparation on pandas/scikit-learn: messy files read right; errors name file, column, count, lines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from blindgate.pets.ml.data import (
    ColumnChoice,
    check_range,
    encode,
    fit_encoding,
    read_table,
    subset_rows,
)
from blindgate.pets.ml.errors import DataError
from blindgate.pets.psi.inputs import read_keys


def write(tmp_path: Path, text: str, name: str = "party.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_encoding_standardises_numbers_and_one_hot_encodes_categories(tmp_path: Path) -> None:
    table = read_table(write(tmp_path, "id,age,job,y\na,30,x,yes\nb,50,y,no\nc,40,x,1\n"), "id", "y")
    assert table.labels is not None and table.labels.tolist() == [1.0, 0.0, 1.0]
    encoding = fit_encoding(table)
    features = encode(table, encoding)
    assert encoding.feature_names == ["age", "job=x", "job=y"]
    assert np.allclose(features[:, 0].mean(), 0) and np.allclose(features[:, 0].std(), 1)
    assert features[:, 1:].tolist() == [[1, 0], [0, 1], [1, 0]]


def test_a_byte_order_mark_quoting_and_other_encodings_are_read(tmp_path: Path) -> None:
    bom = write(tmp_path, '\ufeffid,note,age\na,"x, with ""quotes""\nand a newline",3\nb,y,4\n')
    table = read_table(bom, "id")  # the id column is found despite the mark
    assert table.ids == ["a", "b"] and table.frame["note"].tolist()[0] == 'x, with "quotes"\nand a newline'
    latin = write(tmp_path, "id,city\na,Zürich\nb,Genève\n", "latin.csv", "latin-1")
    with pytest.raises(DataError, match=r"latin.csv: not utf-8 text \(give its encoding with --encoding\)"):
        read_table(latin, "id")
    assert read_table(latin, "id", encoding="latin-1").frame["city"].tolist() == ["Zürich", "Genève"]


def test_parquet_is_read_with_the_same_rules(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    import pandas as pd

    path = tmp_path / "party.parquet"
    pd.DataFrame({"id": ["a", "b", "a"], "age": [30, None, 40]}).to_parquet(path)
    table = read_table(path, "id")
    assert table.ids == ["a", "b"] and table.report.duplicate_ids == [4]
    assert table.frame["age"].tolist() == ["30.0", None]


def test_every_error_names_the_file_the_column_the_count_and_the_first_lines(tmp_path: Path) -> None:
    rows = "".join(f"r{i},{'oops' if i in (2, 7, 10) else i}\n" for i in range(20))
    table = read_table(write(tmp_path, "id,balance\n" + rows), "id")
    with pytest.raises(DataError) as caught:
        fit_encoding(table)
    message = str(caught.value)
    assert "party.csv: column 'balance': 3 rows hold a value that is not a finite number" in message
    assert "(lines 4, 9, 12)" in message and "oops" not in message  # the lines, never the value
    labels = "".join(f"r{i},{'' if i in (0, 5) else 'maybe' if i == 3 else 'no'}\n" for i in range(8))
    with pytest.raises(DataError, match=r"column 'y': 2 rows have no label value \(lines 2, 7\)"):
        read_table(write(tmp_path, "id,y\n" + labels), "id", "y")
    with pytest.raises(
        DataError, match=r"column 'y': 1 row hold a label that is not 0/1 or yes/no \(line 5\)"
    ):
        read_table(write(tmp_path, "id,y\n" + labels.replace(",\n", ",no\n")), "id", "y")
    with pytest.raises(DataError, match=r"no id column 'phone' \(columns found: id, balance\)"):
        read_table(write(tmp_path, "id,balance\na,1\n"), "phone")
    with pytest.raises(DataError, match=r"party.csv: not a valid CSV file \(.*line 3.*\)"):
        read_table(write(tmp_path, "id,age\na,1\nb,2,3\n"), "id")


def test_duplicates_follow_the_psi_rule_first_row_kept_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path, "id,age\na,1\nb,2\na,3\n,4\nb,5\n")
    table = read_table(path, "id")
    assert table.ids == ["a", "b"] and table.frame["age"].tolist() == ["1", "2"]
    assert table.report.duplicate_ids == [4, 6] and table.report.invalid_ids == [5]
    notes = "\n".join(table.report.notes())
    assert "2 rows repeat an earlier id: left out (first row kept) (lines 4, 6)" in notes
    psi = read_keys(path, ["id"], ("trim",))  # PSI keeps the same rows
    assert psi.rows == [0, 1] and psi.report.duplicates == 2


def test_national_phone_numbers_match_international_ones_with_a_region(tmp_path: Path) -> None:
    wallet = write(tmp_path, "phone,age\n8123 4567,1\n+65 9123 4567,2\n12,3\n", "wallet.csv")
    network = write(tmp_path, "msisdn,spend\n+6581234567,1\n+6591234567,2\n", "network.csv")
    w = read_table(wallet, "phone", rules=("e164",), region="SG")
    n = read_table(network, "msisdn", rules=("e164",), region="SG")
    assert w.ids == n.ids == ["+6581234567", "+6591234567"]
    assert w.report.invalid_ids == [4]  # "12" is no phone number: left out, counted
    emails = write(tmp_path, "email,x\n Alice@Example.COM ,1\nnot-an-email,2\n", "emails.csv")
    e = read_table(emails, "email", rules=("email",))
    assert e.ids == ["alice@example.com"] and e.report.invalid_ids == [3]


def test_a_phone_column_is_not_a_number_and_unique_text_is_excluded_by_name(tmp_path: Path) -> None:
    rows = "".join(f"c{i},+65 8{i:07d},Person {i},{i % 3},{20 + i % 40}\n" for i in range(80))
    table = read_table(write(tmp_path, "id,phone,full_name,segment,age\n" + rows), "id")
    encoding = fit_encoding(table)
    assert encoding.order == ["segment", "age"]
    assert set(encoding.excluded) == {"phone", "full_name"}  # not a numeric "phone" feature
    assert "80 distinct values" in encoding.excluded["full_name"]
    assert any("column 'full_name' excluded" in note for note in table.report.notes())
    kept = fit_encoding(table, ColumnChoice(categorical=("full_name", "segment")))
    assert "full_name" in kept.order and kept.categorical["segment"] == ["0", "1", "2"]


def test_features_drop_and_unknown_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "id,a,b,c\nx,1,2,3\ny,4,5,6\n")
    assert read_table(path, "id", columns=ColumnChoice(features=("a", "c"))).columns == ["a", "c"]
    assert read_table(path, "id", columns=ColumnChoice(drop=("b",))).columns == ["a", "c"]
    with pytest.raises(
        DataError, match=r"no column 'zz' named in --features.*\(columns found: id, a, b, c\)"
    ):
        read_table(path, "id", columns=ColumnChoice(drop=("zz",)))


def test_missing_values_are_imputed_with_a_stated_rule(tmp_path: Path) -> None:
    path = write(tmp_path, "id,age,job\na,10,x\nb,,\nc,30,NA\nd,20,y\n")
    table = read_table(path, "id")
    assert table.report.missing == {"age": 1, "job": 2}
    encoding = fit_encoding(table)
    assert encoding.feature_names == ["age", "job=(missing)", "job=x", "job=y", "age (missing)"]
    features = encode(table, encoding)
    median, mean, scale = encoding.numeric["age"]
    assert median == 20.0 and features[1, 0] == pytest.approx((20.0 - mean) / scale)
    assert features[:, -1].tolist() == [0, 1, 0, 0] and features[2, 1] == 1.0


def test_unseen_levels_at_prediction_encode_as_zeros_and_are_counted(tmp_path: Path) -> None:
    train = read_table(write(tmp_path, "id,job\na,x\nb,y\nc,x\n"), "id")
    encoding = fit_encoding(train)
    later = read_table(write(tmp_path, "id,job\nd,x\ne,z\nf,z\ng,y\n", "later.csv"), "id")
    features = encode(later, encoding)
    assert features.tolist() == [[1, 0], [0, 0], [0, 0], [0, 1]]
    assert later.report.unseen == {"job": [3, 4]}
    notes = "\n".join(later.report.notes())
    assert "later.csv: column 'job': 2 rows hold a level unseen in training" in notes and "all zeros" in notes
    assert later.report.as_dict()["unseen_levels"]["job"]["count"] == 2


def test_values_beyond_the_fixed_point_range_are_refused_with_lines(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="column 'balance': values exceed the fixed-point range"):
        check_range(np.array([[1.0, 5000.0]]), ["age", "balance"], 1024.0)
    table = read_table(write(tmp_path, "id,v\na,1\nb,2\n"), "id")
    with pytest.raises(DataError, match=r"party.csv: column 'v': 1 row exceed .*\(line 3\)"):
        check_range(np.array([[1.0], [5000.0]]), ["v"], 1024.0, subset_rows(table, [0, 1]))
