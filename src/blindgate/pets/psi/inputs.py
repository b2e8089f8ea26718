"""Reading a party's rows, normalising their key columns, and writing the rows that matched.

Both parties must normalise the same way, so the rules are declared per run (and
compared by the protocol's hello): ``trim`` (strip surrounding white space),
``lower`` (Unicode case fold), ``email`` (``email-validator``'s syntax check and
normalisation, then case fold; an invalid address is invalid), ``e164`` (phone numbers
parsed by ``phonenumbers``: international ``+``/``00`` forms, or national forms in the
``region`` the party gives (``--region SG``: "8123 4567" is +6581234567); a number
``phonenumbers`` holds impossible is invalid). The region is each party's own (a
wallet's file may be national, the network's international), so it is not compared.

A row whose key is empty or invalid takes no part; a key seen again is a duplicate and
only its first row takes part (the same rule as ``blindgate train`` and ``predict``).
Both are counted in :class:`InputReport`, never echoed,
since keys are personal data. Inputs are read as a stream: :func:`spill_keys` hands
each valid key with its row number to a ``buckets.SpilledKeys`` (which drops
duplicates bucket by bucket, later), :func:`read_keys` keeps the distinct keys in
memory for small jobs. The output is written from a final pass over the input, to a
temporary file renamed into place only when complete.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from blindgate.fileio import atomic_writer
from blindgate.pets.psi.buckets import SpilledKeys
from blindgate.pets.psi.errors import InputError

RULES = ("trim", "lower", "email", "e164")
SHOWN_LINES = 5  # line numbers kept per column for a message


def _e164(value: str, region: str | None) -> str | None:
    import phonenumbers

    compact = value.strip()
    if compact.startswith("00") and region is None:  # the common international prefix, with no region to ask
        compact = "+" + compact[2:]
    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _email(value: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:
        checked = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    return unicodedata.normalize("NFC", checked.normalized).casefold()


_RULE_FUNCS: dict[str, Callable[[str, str | None], str | None]] = {
    "trim": lambda v, _: v.strip(),
    "lower": lambda v, _: unicodedata.normalize("NFC", v).casefold(),
    "email": lambda v, _: _email(v),
    "e164": _e164,
}


def parse_rules(spec: str) -> tuple[str, ...]:
    """``"trim,lower"`` -> ("trim", "lower"); an empty spec means keys are compared as they are."""
    rules = tuple(r.strip() for r in spec.split(",") if r.strip())
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise InputError(f"unknown normalisation {unknown[0]!r}; choose from {', '.join(RULES)}")
    return rules


def normalise(value: str, rules: Sequence[str], region: str | None = None) -> str | None:
    """Apply ``rules`` in order; None when the value is empty or invalid under them.

    ``region`` (ISO 3166 alpha-2) is where national phone numbers are read (``e164``)."""
    current: str | None = value
    for rule in rules:
        if current is None:
            return None
        current = _RULE_FUNCS[rule](current, region)
    return current or None


def encode_key(parts: Sequence[str]) -> bytes:
    """Several key columns as one unambiguous byte string (each part length-prefixed)."""
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


@dataclass
class InputReport:
    rows: int = 0
    keys: int = 0
    duplicates: int = 0
    invalid: int = 0  # rows left out: some key column empty or invalid
    file: str = ""
    # Per key column: rows whose value there is empty or invalid, and the first few line
    # numbers (the header is line 1). Line numbers and counts only: never a value.
    invalid_by_column: dict[str, int] = field(default_factory=dict)
    invalid_lines: dict[str, list[int]] = field(default_factory=dict)

    def add_invalid(self, column: str, line: int) -> None:
        self.invalid_by_column[column] = self.invalid_by_column.get(column, 0) + 1
        lines = self.invalid_lines.setdefault(column, [])
        if len(lines) < SHOWN_LINES:
            lines.append(line)

    def invalid_notes(self) -> list[str]:
        """One line per key column with invalid values: file, column, count, first line numbers."""
        notes = []
        for column, count in self.invalid_by_column.items():
            lines = self.invalid_lines[column]
            shown = ", ".join(map(str, lines)) + (", ..." if count > len(lines) else "")
            plural = "s" if count != 1 else ""
            notes.append(
                f"{self.file}: column {column!r}: {count} row{plural} with an empty or invalid key "
                f"(line{'s' if count != 1 else ''} {shown}): left out"
            )
        return notes

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rows": self.rows,
            "keys": self.keys,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
        }
        if self.invalid_by_column:
            out["invalid_by_column"] = {
                column: {"rows": count, "first_lines": self.invalid_lines[column]}
                for column, count in self.invalid_by_column.items()
            }
        return out


@dataclass
class KeyedInput:
    """The distinct keys of one party's file, in file order, and the row each came from."""

    path: Path
    keys: list[bytes]
    rows: list[int]
    report: InputReport = field(default_factory=InputReport)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in {".parquet", ".pq"}


def _iter_records(path: Path, batch: int = 65536) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
    """Yield once: the header and an iterator over the rows as strings (CSV or Parquet)."""
    if _is_parquet(path):
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise InputError("reading Parquet needs pyarrow (pip install 'blindgate[parquet]')") from exc
        parquet = pq.ParquetFile(path)
        header = list(parquet.schema_arrow.names)

        def parquet_rows() -> Iterator[list[str]]:
            for chunk in parquet.iter_batches(batch_size=batch):
                columns = [[("" if v is None else str(v)) for v in col.to_pylist()] for col in chunk.columns]
                yield from (list(row) for row in zip(*columns, strict=True))

        yield header, parquet_rows()
        return
    with path.open(newline="", encoding="utf-8-sig") as handle:  # a byte-order mark is not the header
        reader = csv.reader(handle)
        header = next(reader, [])
        yield header, reader


def iter_keys(
    path: Path,
    columns: Sequence[str],
    rules: Sequence[str],
    report: InputReport,
    batch: int = 65536,
    region: str | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Stream ``path``: (row number, normalised key) of every valid row, duplicates included."""
    if not path.is_file():
        raise InputError(f"input file not found: {path}")
    report.file = path.name
    try:
        for header, records in _iter_records(path, batch):
            if not header:
                return
            missing = [c for c in columns if c not in header]
            if missing:
                raise InputError(
                    f"{path.name}: key column {missing[0]!r} is not in the header "
                    f"(columns found: {', '.join(header)})"
                )
            positions = [header.index(c) for c in columns]
            for index, record in enumerate(records):
                report.rows += 1
                if len(record) != len(header):
                    raise InputError(
                        f"row {index + 2} has {len(record)} fields, the header has {len(header)}"
                    )
                parts = [normalise(record[p], rules, region) for p in positions]
                if any(p is None for p in parts):
                    report.invalid += 1
                    for column, part in zip(columns, parts, strict=True):
                        if part is None:
                            report.add_invalid(column, index + 2)
                    continue
                yield index, encode_key([p for p in parts if p is not None])
    except UnicodeDecodeError as exc:
        raise InputError("the input is not UTF-8 text") from exc
    except csv.Error as exc:
        raise InputError(f"the input is not valid CSV: {exc}") from exc


def read_keys(
    path: Path, columns: Sequence[str], rules: Sequence[str], region: str | None = None
) -> KeyedInput:
    """Stream ``path`` and collect the normalised key of every row (first occurrence wins)."""
    report = InputReport()
    keys: list[bytes] = []
    rows: list[int] = []
    seen: set[bytes] = set()
    for index, key in iter_keys(path, columns, rules, report, region=region):
        if key in seen:
            report.duplicates += 1
            continue
        seen.add(key)
        keys.append(key)
        rows.append(index)
    report.keys = len(keys)
    return KeyedInput(path, keys, rows, report)


def spill_keys(
    path: Path, columns: Sequence[str], rules: Sequence[str], keyset: SpilledKeys, region: str | None = None
) -> InputReport:
    """Stream ``path`` into ``keyset``, holding one batch at a time. ``keys`` and ``duplicates``
    of the report are left to the run, which finds duplicates bucket by bucket."""
    report = InputReport()
    for index, key in iter_keys(path, columns, rules, report, min(65536, keyset.batch), region):
        keyset.add(index, key)
    keyset.finish()
    return report


def write_rows(source: Path, destination: Path, row_order: Sequence[int]) -> None:
    """Write the header and the rows of ``source`` listed in ``row_order``, in that order, atomically.

    Rows in file order (every mode but the join) are copied as the input streams past,
    holding only the row numbers; another order (the join's) holds the matched rows, the
    output itself, until they can be written in that order.
    """
    order = np.asarray(row_order, dtype=np.int64)
    assert np.unique(order).size == order.size, "each row is written once"
    if bool(np.all(order[1:] > order[:-1])):
        _atomic_write(destination, lambda w: _copy_rows(source, w, order))
        return
    wanted = {int(row): position for position, row in enumerate(order)}
    picked: list[list[str] | None] = [None] * len(row_order)
    header: list[str] = []
    for source_header, records in _iter_records(source):
        header = source_header
        for index, record in enumerate(records):
            position = wanted.get(index)
            if position is not None:
                picked[position] = record
    assert all(row is not None for row in picked), "every matched row exists in the source"

    _atomic_write(
        destination, lambda w: (w.writerow(header), w.writerows(r for r in picked if r is not None))
    )


def _copy_rows(source: Path, writer: Any, rows: np.ndarray) -> None:
    """Copy the header and the rows numbered ``rows`` (increasing) from ``source`` as it streams."""
    written, wanted = 0, int(rows[0]) if rows.size else -1
    for header, records in _iter_records(source):
        writer.writerow(header)
        for index, record in enumerate(records):
            if index == wanted:
                writer.writerow(record)
                written += 1
                wanted = int(rows[written]) if written < rows.size else -1
    assert written == rows.size, "every matched row exists in the source"


def write_size(destination: Path, size: int) -> None:
    """Cardinality mode: the file holds the intersection's size alone."""
    _atomic_write(destination, lambda w: w.writerows([["intersection_size"], [str(size)]]))


def _atomic_write(destination: Path, fill: Callable[[Any], object]) -> None:
    with atomic_writer(destination, newline="") as handle:
        fill(csv.writer(handle))


__all__ = [
    "RULES",
    "InputReport",
    "KeyedInput",
    "encode_key",
    "iter_keys",
    "normalise",
    "parse_rules",
    "read_keys",
    "spill_keys",
    "write_rows",
    "write_size",
]
