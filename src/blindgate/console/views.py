"""What the console shows, read from the gateway's store (read-only) and the reports folder.

The store is read by reflection (whatever tables and columns the running gateway created),
so the console shows every field the gateway stored — also one added later — each with its
class:

- ``clear routing data``: ids, amounts, currencies, statuses, times, URLs the gateway needs;
- ``pseudonym``: a keyed PRF output standing for a payer or a request (``pseudonym``,
  ``fingerprint``): linkable only by whoever holds the key (the wallet or acquirer agent);
- ``sealed``: an HPKE envelope (`blindgate.crypto.sealing`) only its recipient can open;
- ``clear, with sealed fields``: a JSON document whose personal leaves are envelopes.

Values are shown as stored, except that sealed values and pseudonyms are cut to a prefix and
their length (they are opaque; the page has no use for the whole). Partners see only rows
naming their own party id (``acquirer_id``, ``wallet_id``, ``partner_id``).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from blindgate.console.users import User
from blindgate.crypto.sealing import is_sealed
from blindgate.storage import open_engine as open_store

CLEAR, PSEUDONYM, SEALED, MIXED = "clear routing data", "pseudonym", "sealed", "clear, with sealed fields"
PSEUDONYM_COLUMNS = frozenset({"pseudonym", "fingerprint", "customer_pseudonym"})
PARTY_COLUMNS = ("acquirer_id", "wallet_id", "partner_id")
SAMPLE_ROWS = 50  # values looked at to class a column on the privacy page
LIST_LIMIT = 500


def classify(column: str, value: Any) -> str:
    if column in PSEUDONYM_COLUMNS or column.endswith("_pseudonym"):
        return PSEUDONYM
    if is_sealed(value):
        return SEALED
    if isinstance(value, str) and "bg1." in value and _has_sealed_leaf(value):
        return MIXED
    return CLEAR


def shown(kind: str, value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if kind in {SEALED, PSEUDONYM} or (kind == MIXED and len(text) > 80):
        return f"{text[:12]}… ({len(text)} chars)"
    return text


@dataclass
class ColumnInventory:
    name: str
    kind: str
    filled: int


@dataclass
class TableInventory:
    name: str
    rows: int
    columns: list[ColumnInventory] = field(default_factory=list)


class ConsoleStore:
    def __init__(self, url: str) -> None:
        self.engine = open_store(url)

    def close(self) -> None:
        self.engine.dispose()

    def _tables(self) -> dict[str, sa.Table]:
        metadata = sa.MetaData()
        metadata.reflect(self.engine)
        return dict(metadata.tables)

    def payments(self, user: User) -> list[dict[str, Any]]:
        table = self._tables().get("gw_payments")
        if table is None:
            return []
        wanted = ("payment_id", "created_at", "acquirer_id", "wallet_id", "currency", "amount",
                  "wallet_currency", "wallet_amount", "status", "result_code")  # fmt: skip
        query = sa.select(*(table.c[name] for name in wanted if name in table.c))
        query = _only_own(query, table, user).order_by(table.c.created_at.desc()).limit(LIST_LIMIT)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def payment(self, user: User, payment_id: str) -> dict[str, list[tuple[str, str, str]]] | None:
        """Every stored field of one payment and of its refunds, as (name, class, value), per table;
        None when there is no such payment or it is not the user's to see."""
        tables = self._tables()
        payments = tables.get("gw_payments")
        if payments is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(payments).where(payments.c.payment_id == payment_id)).first()
            if row is None or not user.may_see(row.acquirer_id, row.wallet_id):
                return None
            found = {"gw_payments": [row._mapping]}
            for name, table in sorted(tables.items()):
                if name != "gw_payments" and "payment_id" in table.c and name.startswith("gw_"):
                    rows = conn.execute(sa.select(table).where(table.c.payment_id == payment_id)).all()
                    if rows:
                        found[name] = [r._mapping for r in rows]
        return {
            f"{name} #{index + 1}" if len(rows) > 1 else name: _fields(mapping)
            for name, rows in found.items()
            for index, mapping in enumerate(rows)
        }

    def days(self, user: User) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(business days: closed or open, with their postings; settlement batches)."""
        tables = self._tables()
        entries, closed, batches = (
            tables.get(n) for n in ("ledger_entries", "ledger_days", "ledger_batches")
        )
        days: list[dict[str, Any]] = []
        found_batches: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            if entries is not None:
                query = sa.select(entries.c.business_date, sa.func.count().label("postings"))
                query = _only_own(query, entries, user).group_by(entries.c.business_date)
                closed_at = (
                    dict(conn.execute(sa.select(closed.c.business_date, closed.c.closed_at)).all())
                    if closed is not None
                    else {}
                )
                for day, postings in conn.execute(query.order_by(entries.c.business_date.desc())):
                    days.append({"business_date": day, "postings": postings, "closed_at": closed_at.get(day)})
            if batches is not None:
                query = _only_own(sa.select(batches), batches, user)
                query = query.order_by(batches.c.business_date.desc(), batches.c.partner_id)
                found_batches = [dict(r._mapping) for r in conn.execute(query.limit(LIST_LIMIT))]
        return days, found_batches

    def inventory(self) -> list[TableInventory]:
        """Every table of the store: its rows, and each column's class and filled count."""
        found = []
        with self.engine.connect() as conn:
            for name, table in sorted(self._tables().items()):
                rows = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                inventory = TableInventory(name, rows)
                for column in table.c:
                    filled = conn.execute(sa.select(sa.func.count(column))).scalar_one()
                    sample = conn.execute(
                        sa.select(column).where(column.is_not(None)).limit(SAMPLE_ROWS)
                    ).scalars()
                    kinds = {classify(column.name, value) for value in sample} or {
                        classify(column.name, None)
                    }
                    inventory.columns.append(ColumnInventory(column.name, _strongest(kinds), filled))
                found.append(inventory)
        return found


def _only_own(query: Any, table: sa.Table, user: User) -> Any:
    if user.sees_everything:
        return query
    columns = [table.c[name] for name in PARTY_COLUMNS if name in table.c]
    if not columns:
        return query.where(sa.false())
    return query.where(sa.or_(*(column == user.party_id for column in columns)))


def _fields(mapping: Any) -> list[tuple[str, str, str]]:
    return [
        (name, classify(name, value), shown(classify(name, value), value)) for name, value in mapping.items()
    ]


def _strongest(kinds: set[str]) -> str:
    for kind in (SEALED, MIXED, PSEUDONYM):
        if kind in kinds:
            return kind
    return CLEAR


def _has_sealed_leaf(text: str) -> bool:
    try:
        document = json.loads(text)
    except ValueError:
        return False
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif is_sealed(item):
            return True
    return False


@dataclass
class Report:
    name: str
    kind: str  # privacy, linkage, reconciliation, run
    summary: list[tuple[str, str]]


def read_reports(folder: Path | None) -> list[Report]:
    """The reports folder: ``privacy*.json`` (`blindgate audit privacy --out`), ``linkage*.json``
    (`blindgate audit linkage --out`, shown by `blindgate.console.linkage`), ``*.csv`` breaks
    from `blindgate reconcile --out`, and any other ``*.json`` (a PET run's or the demo's report)."""
    if folder is None or not folder.is_dir():
        return []
    reports = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".csv":
            with path.open(newline="") as f:
                breaks = sum(1 for _ in csv.DictReader(f))
            reports.append(Report(path.name, "reconciliation", [("breaks", str(breaks))]))
        elif path.suffix == ".json":
            try:
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            kind = next((k for k in ("privacy", "linkage") if path.name.startswith(k)), "run")
            reports.append(Report(path.name, kind, _flatten(document)))
    return reports


def _flatten(document: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Scalar leaves as (dotted key, value), three levels deep at most, lists summarised."""
    if isinstance(document, dict) and depth < 3:
        found = []
        for key, value in document.items():
            found += _flatten(value, f"{prefix}{key}.", depth + 1)
        return found
    if isinstance(document, list):
        return [(prefix.rstrip("."), f"{len(document)} items")]
    return [(prefix.rstrip("."), json.dumps(document) if isinstance(document, dict) else str(document))]
