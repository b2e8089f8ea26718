"""Reading keys, declared normalisation, duplicates, empty inputs, atomic output."""

from __future__ import annotations

from pathlib import Path

import pytest

from blindgate.pets.psi import InputError
from blindgate.pets.psi.buckets import SpilledKeys, key_digest
from blindgate.pets.psi.inputs import (
    encode_key,
    normalise,
    parse_rules,
    read_keys,
    spill_keys,
    write_rows,
    write_size,
)


def _csv(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("value", "rules", "expected"),
    [
        ("  Alice  ", ("trim",), "Alice"),
        ("ÄLICE", ("trim", "lower"), "älice"),
        (" Bob@Example.COM ", ("email",), "bob@example.com"),
        ("not-an-email", ("email",), None),
        ("a@b@c", ("email",), None),
        ("+44 (20) 7946-0958", ("e164",), "+442079460958"),
        ("0044 20 7946 0958", ("e164",), "+442079460958"),
        ("020 7946 0958", ("e164",), None),  # no country code: invalid, not guessed
        ("+1 23", ("e164",), None),
        ("   ", ("trim",), None),
        ("as is", (), "as is"),
    ],
)
def test_normalisation(value: str, rules: tuple[str, ...], expected: str | None) -> None:
    assert normalise(value, rules) == expected


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("8123 4567", "SG", "+6581234567"),  # national Singapore mobile
        ("+65 8123 4567", "SG", "+6581234567"),  # international form: the region does not matter
        ("+65 8123 4567", "GB", "+6581234567"),
        ("020 7946 0958", "GB", "+442079460958"),  # national UK, trunk 0 dropped
        ("8123 4567", None, None),  # national with no region: invalid, not guessed
        ("12", "SG", None),
    ],
)
def test_national_phone_numbers_read_in_the_given_region(
    value: str, region: str | None, expected: str | None
) -> None:
    assert normalise(value, ("e164",), region) == expected


def test_a_byte_order_mark_is_not_part_of_the_key_column_name(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffphone,x\n+6581234567,1\n".encode())
    keyed = read_keys(path, ["phone"], ("e164",))
    assert keyed.rows == [0]
    out = tmp_path / "out.csv"
    write_rows(path, out, [0])
    assert out.read_text().splitlines()[0] == "phone,x"  # the header copied without the mark


def test_unknown_rule_is_an_input_error() -> None:
    assert parse_rules("trim, lower") == ("trim", "lower")
    with pytest.raises(InputError, match="unknown normalisation"):
        parse_rules("trim,soundex")


def test_multi_column_keys_are_unambiguous() -> None:
    assert encode_key(["ab", "c"]) != encode_key(["a", "bc"])


def test_duplicates_and_invalid_rows_are_counted_not_echoed(tmp_path: Path) -> None:
    path = _csv(tmp_path, "mail,n\nA@x.com,1\na@x.com ,2\n,3\nbad,4\nb@x.com,5\n")
    keyed = read_keys(path, ["mail"], ("email",))
    assert keyed.report.as_dict() == {
        "rows": 5,
        "keys": 2,
        "duplicates": 1,
        "invalid": 2,
        "invalid_by_column": {"mail": {"rows": 2, "first_lines": [4, 5]}},  # the header is line 1
    }
    assert keyed.rows == [0, 4]  # first occurrence wins


def test_invalid_phone_numbers_are_reported_by_file_column_count_and_first_lines(tmp_path: Path) -> None:
    good = ["8123 4567", "+65 9123 4567", "6512 3456"]
    bad = ["12", "not a number", "", "0", "99", "1 2", "x"]  # impossible in Singapore, or empty
    rows = [*good, *bad]
    path = _csv(tmp_path, "phone,n\n" + "".join(f"{p},{i}\n" for i, p in enumerate(rows)))
    keyed = read_keys(path, ["phone"], ("e164",), region="SG")
    assert keyed.report.keys == 3 and keyed.report.invalid == 7
    (note,) = keyed.report.invalid_notes()
    assert note == (
        f"{path.name}: column 'phone': 7 rows with an empty or invalid key "
        "(lines 5, 6, 7, 8, 9, ...): left out"
    )
    assert not any(value in note for value in bad if len(value) > 2)  # lines, never values


def test_several_key_columns(tmp_path: Path) -> None:
    path = _csv(tmp_path, "first,last\nAnn,Lee\nAnn,Lee\nAnn,Li\n")
    keyed = read_keys(path, ["first", "last"], ("trim",))
    assert len(keyed.keys) == 2 and keyed.report.duplicates == 1


def test_empty_and_header_only_inputs(tmp_path: Path) -> None:
    assert read_keys(_csv(tmp_path, ""), ["k"], ()).keys == []
    assert read_keys(_csv(tmp_path, "k\n", "h.csv"), ["k"], ()).keys == []


def test_wrong_key_column_and_bad_files(tmp_path: Path) -> None:
    path = _csv(tmp_path, "email\na@x.com\n")
    expected = r"in.csv: key column 'phone' is not in the header \(columns found: email\)"
    with pytest.raises(InputError, match=expected):
        read_keys(path, ["phone"], ())
    with pytest.raises(InputError, match="not found"):
        read_keys(tmp_path / "missing.csv", ["email"], ())
    ragged = _csv(tmp_path, "a,b\n1\n", "ragged.csv")
    with pytest.raises(InputError, match="fields"):
        read_keys(ragged, ["a"], ())
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"k\n\xff\xfe\n")
    with pytest.raises(InputError, match="UTF-8"):
        read_keys(binary, ["k"], ())


def test_write_rows_in_the_given_order_and_atomically(tmp_path: Path) -> None:
    source = _csv(tmp_path, "k,v\na,1\nb,2\nc,3\n")
    out = tmp_path / "out" / "rows.csv"
    write_rows(source, out, [2, 0])
    assert out.read_text().splitlines() == ["k,v", "c,3", "a,1"]
    write_size(out, 7)
    assert out.read_text().splitlines() == ["intersection_size", "7"]
    assert not list(out.parent.glob("*.partial"))


def test_parquet_input_when_pyarrow_is_present(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"mail": ["A@x.com", "b@x.com", "a@x.com"], "n": [1, 2, 3]}), path)
    keyed = read_keys(path, ["mail"], ("email",))
    assert keyed.report.as_dict() == {"rows": 3, "keys": 2, "duplicates": 1, "invalid": 0}
    out = tmp_path / "out.csv"
    write_rows(path, out, [1])
    assert out.read_text().splitlines() == ["mail,n", "b@x.com,2"]


def test_write_rows_in_file_order_streams_and_checks(tmp_path: Path) -> None:
    source = _csv(tmp_path, "k,v\na,1\nb,2\nc,3\nd,4\n")
    out = tmp_path / "rows.csv"
    write_rows(source, out, [0, 2, 3])  # increasing: copied as the input streams past
    assert out.read_text().splitlines() == ["k,v", "a,1", "c,3", "d,4"]
    write_rows(source, out, [])
    assert out.read_text().splitlines() == ["k,v"]
    with pytest.raises(AssertionError, match="every matched row"):
        write_rows(source, out, [1, 9])  # a row the file does not have: no output replaces the old
    assert out.read_text().splitlines() == ["k,v"] and not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_spill_keys_streams_every_valid_row_with_its_number(tmp_path: Path, kind: str) -> None:
    mails = ["A@x.com", "b@x.com", "", "a@x.com", "nope"]
    if kind == "parquet":
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        path = tmp_path / "in.parquet"
        pq.write_table(pa.table({"mail": mails}), path)
    else:
        path = _csv(tmp_path, "mail\n" + "\n".join(f'"{m}"' for m in mails) + "\n")  # "" is a row
    with SpilledKeys(2, tmp_path) as keyset:
        report = spill_keys(path, ["mail"], ("email",), keyset)
        assert report.rows == 5 and report.invalid == 2 and keyset.count == 3
        assert keyset.partition(1, bytes(16), keyset.count)
        bucket = keyset.bucket(0)  # read back two records at a time; the repeat dropped
        assert bucket["row"].tolist() == [0, 1] and keyset.duplicates == 1
        assert bucket["digest"].tolist() == [
            key_digest(encode_key(["a@x.com"])),
            key_digest(encode_key(["b@x.com"])),
        ]
