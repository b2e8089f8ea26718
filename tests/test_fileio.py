"""blindgate.fileio: a file appears whole or not at all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from blindgate.fileio import atomic_writer, write_atomically


def test_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "out.csv"
    write_atomically(target, "old\n")
    write_atomically(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]  # no temporary left


def test_an_error_midway_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.json"
    target.write_text("complete\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half of a new")
        raise RuntimeError("the writer failed midway")
    assert target.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]


def test_exclusive_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "v1.json"
    write_atomically(target, "first\n", exclusive=True, permissions=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_atomically(target, "second\n", exclusive=True)
    assert target.read_text() == "first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["v1.json"]


def test_text_is_utf8_and_newline_is_passed_through(tmp_path: Path) -> None:
    target = tmp_path / "rows.csv"
    with atomic_writer(target, newline="") as handle:
        handle.write("café\r\n")
    assert target.read_bytes() == "café\r\n".encode()
