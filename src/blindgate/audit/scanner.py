"""The privacy scanner: does any personal value appear in the bytes a party wrote?

It checks every file under a directory — databases (SQLite main, WAL and journal files
included, read as raw bytes), logs, stored notifications, anything — for every personal
value it is given, in clear and in the encodings a careless system would use:

``clear``, ``lower``, ``upper`` (case), ``hex``/``HEX`` (of the UTF-8 bytes), ``base64`` and
``base64url`` (of the UTF-8 bytes, padded and unpadded), ``sha256``/``SHA256`` (unsalted hex
digest of the UTF-8 bytes, the classic reversible "anonymisation"), and ``url``
(percent-encoding, e.g. ``%2B82...`` for a phone number).

How it is fast: every variant is at least 8 bytes long, so each is indexed by its first
8 bytes read as one little-endian 64-bit integer. A file is read once, through ``mmap``;
NumPy views its bytes as 64-bit words at the eight possible offsets (no copy) and looks
every word up in the sorted index with ``searchsorted``. Only the rare positions whose 8
bytes start some pattern are checked in Python, against the full patterns. This small
"hash the prefix, verify the hit" scheme (Rabin–Karp's idea, with the 8 bytes themselves as
the hash) is written here because no Aho–Corasick library is among the project's
dependencies and a regex of 100,000 alternatives takes Python's `re` seconds to compile.
Matches are counted per kind, per encoding and per file; the report never contains a value,
only counts and file paths, so it is safe to print and to store.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import mmap
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MIN_VALUE_LENGTH = 8  # the index key; shorter values would also match by chance in ids and ciphertext
_KEY = np.dtype("<u8")


def encodings(value: str) -> dict[str, bytes]:
    """The variants of one value the scanner looks for, by encoding name."""
    raw = value.encode("utf-8")
    digest = hashlib.sha256(raw).hexdigest()
    b64 = base64.b64encode(raw)
    b64url = base64.urlsafe_b64encode(raw)
    variants = {
        "clear": raw,
        "lower": value.lower().encode("utf-8"),
        "upper": value.upper().encode("utf-8"),
        "hex": raw.hex().encode(),
        "HEX": raw.hex().upper().encode(),
        # Unpadded forms are prefixes of the padded ones, so the regex finds both.
        "base64": b64.rstrip(b"="),
        "base64url": b64url.rstrip(b"="),
        "sha256": digest.encode(),
        "SHA256": digest.upper().encode(),
        "url": urllib.parse.quote(value, safe="").encode(),
    }
    # A variant equal to an earlier one (e.g. the lower case of an all-digit value) counts once,
    # under the earlier, plainer name.
    unique: dict[str, bytes] = {}
    for name, pattern in variants.items():
        if pattern not in unique.values():
            unique[name] = pattern
    return unique


@dataclass
class ScanReport:
    """Counts of personal values found: never the values themselves."""

    files_scanned: int = 0
    bytes_scanned: int = 0
    values: int = 0
    patterns: int = 0
    found: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_encoding: Counter[str] = field(default_factory=Counter)
    by_file: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "files_scanned": self.files_scanned,
            "bytes_scanned": self.bytes_scanned,
            "values_checked": self.values,
            "patterns_checked": self.patterns,
            "by_kind": dict(sorted(self.by_kind.items())),
            "by_encoding": dict(sorted(self.by_encoding.items())),
            "by_file": dict(sorted(self.by_file.items())),
        }


class PrivacyScanner:
    """Compiled once for a set of personal values, then used on any number of files."""

    def __init__(self, values_by_kind: Mapping[str, Iterable[str]]) -> None:
        # pattern -> (kind, encoding); the first value to produce a pattern names it.
        self._labels: dict[bytes, tuple[str, str]] = {}
        self.values = 0
        for kind, values in values_by_kind.items():
            for value in values:
                if len(value) < MIN_VALUE_LENGTH:
                    raise ValueError(f"a {kind} value is shorter than {MIN_VALUE_LENGTH} characters")
                self.values += 1
                for encoding, pattern in encodings(value).items():
                    self._labels.setdefault(pattern, (kind, encoding))
        # 8-byte prefix -> the patterns that start with it, longest first.
        self._by_prefix: dict[int, list[bytes]] = {}
        for pattern in sorted(self._labels, key=len, reverse=True):
            prefix = int.from_bytes(pattern[:MIN_VALUE_LENGTH], "little")
            self._by_prefix.setdefault(prefix, []).append(pattern)
        self._prefixes = np.array(sorted(self._by_prefix), dtype=_KEY)

    @property
    def patterns(self) -> int:
        return len(self._labels)

    def scan_bytes(self, data: bytes | mmap.mmap) -> Counter[tuple[str, str]]:
        hits: Counter[tuple[str, str]] = Counter()
        for position in self._candidates(data):
            for pattern in self._by_prefix[int.from_bytes(data[position : position + 8], "little")]:
                if data[position : position + len(pattern)] == pattern:
                    hits[self._labels[pattern]] += 1
                    break  # the longest pattern that matches here
        return hits

    def _candidates(self, data: bytes | mmap.mmap) -> list[int]:
        """Positions whose next 8 bytes start some pattern, in order."""
        if not len(self._prefixes) or len(data) < MIN_VALUE_LENGTH:
            return []
        found: list[np.ndarray] = []
        for offset in range(MIN_VALUE_LENGTH):
            words = np.frombuffer(data, dtype=_KEY, count=(len(data) - offset) // 8, offset=offset)
            slots = np.searchsorted(self._prefixes, words)
            slots[slots == len(self._prefixes)] = 0
            found.append(np.flatnonzero(self._prefixes[slots] == words) * 8 + offset)
        return sorted(np.concatenate(found).tolist())

    def scan_file(self, path: Path) -> Counter[tuple[str, str]]:
        with path.open("rb") as f:
            if path.stat().st_size == 0:
                return Counter()
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return self.scan_bytes(data)

    def scan_directory(self, root: Path) -> ScanReport:
        """Scan every regular file under ``root`` (recursively, symlinks not followed)."""
        report = ScanReport(values=self.values, patterns=self.patterns)
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            try:
                hits = self.scan_file(path)
                size = path.stat().st_size
            except FileNotFoundError:
                # Gone since the listing: SQLite removes its -shm/-wal files when the last
                # connection closes (a checkpoint thread may close late). What they held is
                # in the database file by then, which is scanned.
                continue
            report.files_scanned += 1
            report.bytes_scanned += size
            for (kind, encoding), count in hits.items():
                report.found += count
                report.by_kind[kind] += count
                report.by_encoding[encoding] += count
                report.by_file[str(path.relative_to(root))] += count
        return report


def read_values_csv(path: Path) -> dict[str, list[str]]:
    """Read a population.csv as ``{kind: [value, ...]}``: every column is a kind of personal value."""
    values: dict[str, list[str]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            for kind, value in row.items():
                if value:
                    values.setdefault(kind, []).append(value)
    return values


def scan_directory(root: Path, values_by_kind: Mapping[str, Iterable[str]]) -> ScanReport:
    """Scan every file under ``root`` for every value; see :class:`PrivacyScanner`."""
    return PrivacyScanner(values_by_kind).scan_directory(root)
