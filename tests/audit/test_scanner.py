"""The privacy scanner finds planted values in every encoding, and nothing in innocent bytes."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from blindgate.audit.scanner import PrivacyScanner, encodings, scan_directory

PHONE, EMAIL, NAME = "+821012345678", "minjun.kim00001@mail.example.kr", "Minjun Kim"
ODD = "~~~~~~~~~"  # its base64 has "+", so its base64url differs
VALUES = {"phone": [PHONE], "email": [EMAIL], "full_name": [NAME], "address": [ODD]}


def test_innocent_bytes_have_no_hits(tmp_path: Path) -> None:
    (tmp_path / "noise.bin").write_bytes(os.urandom(200_000))
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "log.txt").write_text("payment ps_abc ok +8210123456 minjun.kim@mail\n" * 100)
    report = scan_directory(tmp_path, VALUES)
    assert report.found == 0 and report.files_scanned == 3


@pytest.mark.parametrize(
    "encoding", ["clear", "lower", "upper", "hex", "HEX", "base64", "base64url", "sha256", "SHA256", "url"]
)
def test_finds_each_encoding(tmp_path: Path, encoding: str) -> None:
    planted = next(encodings(v)[encoding] for v in (NAME, ODD) if encoding in encodings(v))
    (tmp_path / "f.log").write_bytes(os.urandom(1000) + planted + os.urandom(1000))
    report = scan_directory(tmp_path, VALUES)
    assert report.found == 1
    assert report.by_encoding == {encoding: 1}
    assert report.by_file == {"f.log": 1}


def test_matches_the_standard_encodings() -> None:
    variants = encodings(NAME)
    assert variants["sha256"] == hashlib.sha256(NAME.encode()).hexdigest().encode()
    assert base64.b64encode(NAME.encode()).startswith(variants["base64"])
    assert variants["hex"] == NAME.encode().hex().encode()


def test_finds_values_in_sqlite_and_nested_folders(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    db = sqlite3.connect(tmp_path / "a" / "b" / "gateway.db")
    db.execute("CREATE TABLE t (x TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?)", [(PHONE,), (hashlib.sha256(EMAIL.encode()).hexdigest(),), ("ok",)]
    )
    db.commit()
    db.close()
    report = scan_directory(tmp_path, VALUES)
    assert report.found == 2 and report.by_kind == {"phone": 1, "email": 1}
    assert "+8210" not in str(report.to_json())  # the report never carries a value


def test_counts_every_occurrence_and_rejects_short_values() -> None:
    scanner = PrivacyScanner(VALUES)
    assert sum(scanner.scan_bytes(((PHONE + " ") * 5 + NAME.upper()).encode()).values()) == 6
    with pytest.raises(ValueError):
        PrivacyScanner({"x": ["short"]})


def test_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`blindgate audit privacy` (listed in `blindgate --help`), its exit codes and --out."""
    from blindgate.cli import main as blindgate
    from blindgate.cli import usage

    def main(args: list[str]) -> int:
        return blindgate(["audit", "privacy", *args])

    assert "audit" in usage()
    (tmp_path / "population.csv").write_text(f"phone,email\n{PHONE},{EMAIL}\n")
    (tmp_path / "scanned").mkdir()
    (tmp_path / "scanned" / "a.log").write_text("nothing here\n")
    assert main([str(tmp_path / "scanned"), str(tmp_path / "population.csv")]) == 0
    (tmp_path / "scanned" / "b.log").write_text(f"oops {EMAIL.upper()}\n")
    assert main([str(tmp_path / "scanned"), str(tmp_path / "population.csv")]) == 1
    assert '"found": 1' in capsys.readouterr().out
    assert main(["nowhere", "nothing.csv"]) == 2
    out = tmp_path / "report.json"
    assert main([str(tmp_path / "scanned"), str(tmp_path / "population.csv"), "--out", str(out)]) == 1
    assert EMAIL not in out.read_text() and '"found": 1' in out.read_text()  # counts, never values
    assert blindgate(["audit", "nosuch"]) == 2
