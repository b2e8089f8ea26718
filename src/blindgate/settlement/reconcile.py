"""Reconciliation: a partner's own records against the gateway's settlement item files.

The partner's records are a CSV with a header and these columns (others are ignored):

    transactionId, transactionType, settlementCurrency, settlementAmount, status

``transactionType`` is PAYMENT, REFUND or CANCEL; ``settlementAmount`` an integer of minor
units, signed from the partner's side as in the gateway's files (PAYMENT positive);
``status`` SUCCESS for a transaction the partner counts as done (anything else, e.g. FAIL,
for one it does not). A transaction is keyed by (transactionType, transactionId).

Every break is listed, none hidden behind the first: MISSING_AT_PARTNER, MISSING_AT_GATEWAY,
AMOUNT_MISMATCH, CURRENCY_MISMATCH, STATUS_MISMATCH. A records file with a bad row is
refused as a whole (``BadRecords`` names the row and the rule) before anything is compared.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from blindgate.settlement.errors import BadRecords

RECORD_COLUMNS = ("transactionId", "transactionType", "settlementCurrency", "settlementAmount", "status")
TYPES = ("PAYMENT", "REFUND", "CANCEL")
BREAK_COLUMNS = ("break", "transactionType", "transactionId", "gatewayValue", "partnerValue")


@dataclass(frozen=True)
class Record:
    transaction_id: str
    transaction_type: str
    currency: str
    amount: int
    status: str


@dataclass(frozen=True)
class Break:
    kind: str
    transaction_type: str
    transaction_id: str
    gateway_value: str
    partner_value: str

    def row(self) -> list[str]:
        return [self.kind, self.transaction_type, self.transaction_id, self.gateway_value, self.partner_value]


def _read(path: Path, columns: dict[str, str], status: str | None) -> dict[tuple[str, str], Record]:
    """Rows of ``path`` keyed by (type, id); ``columns`` maps our names to the file's."""
    found: dict[tuple[str, str], Record] = {}
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as failure:
        raise BadRecords(
            f"{path.name}: cannot be read as UTF-8 text ({failure.__class__.__name__})"
        ) from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [name for name in columns.values() if name not in (reader.fieldnames or [])]
        if missing:
            raise BadRecords(f"{path.name}: header lacks column(s) {', '.join(missing)}")
        for number, raw in enumerate(reader, start=2):
            found_key, record = _parse_row(path, number, raw, columns, status)
            if found_key in found:
                raise BadRecords(f"{path.name} row {number}: {found_key[0]} {found_key[1]} appears twice")
            found[found_key] = record
    except csv.Error as failure:
        raise BadRecords(f"{path.name} row {reader.line_num}: not valid CSV ({failure})") from None
    return found


def _parse_row(
    path: Path, number: int, raw: dict[str, str | None], columns: dict[str, str], status: str | None
) -> tuple[tuple[str, str], Record]:
    values = {ours: (raw.get(theirs) or "").strip() for ours, theirs in columns.items()}
    where = f"{path.name} row {number}"
    if not values["id"]:
        raise BadRecords(f"{where}: {columns['id']} is empty")
    if values["type"] not in TYPES:
        raise BadRecords(f"{where}: {columns['type']} must be one of {', '.join(TYPES)}")
    if len(values["currency"]) != 3 or not values["currency"].isalpha() or not values["currency"].isupper():
        raise BadRecords(f"{where}: {columns['currency']} must be an ISO 4217 code")
    try:
        amount = int(values["amount"])
    except ValueError:
        raise BadRecords(f"{where}: {columns['amount']} must be an integer of minor units") from None
    record_status = status if status is not None else values["status"]
    if not record_status:
        raise BadRecords(f"{where}: status is empty")
    record = Record(values["id"], values["type"], values["currency"], amount, record_status)
    return (record.transaction_type, record.transaction_id), record


PARTNER_COLUMNS = {
    "id": "transactionId",
    "type": "transactionType",
    "currency": "settlementCurrency",
    "amount": "settlementAmount",
    "status": "status",
}
GATEWAY_COLUMNS = {k: v for k, v in PARTNER_COLUMNS.items() if k != "status"}


def read_partner_records(path: Path) -> dict[tuple[str, str], Record]:
    return _read(path, PARTNER_COLUMNS, None)


def write_partner_records(path: Path, records: Iterable[Record]) -> None:
    """Write records in the format ``read_partner_records`` reads (for reference partners and tests)."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RECORD_COLUMNS)
        for record in records:
            writer.writerow(
                [
                    record.transaction_id,
                    record.transaction_type,
                    record.currency,
                    record.amount,
                    record.status,
                ]
            )


def read_gateway_items(paths: Iterable[Path]) -> dict[tuple[str, str], Record]:
    """The gateway's items files for one partner (each settled item counts as SUCCESS)."""
    merged: dict[tuple[str, str], Record] = {}
    for path in sorted(paths):
        for key, record in _read(path, GATEWAY_COLUMNS, "SUCCESS").items():
            if key in merged:
                raise BadRecords(f"{path.name}: {key[0]} {key[1]} is also in another settlement file")
            merged[key] = record
    return merged


def reconcile(gateway: dict[tuple[str, str], Record], partner: dict[tuple[str, str], Record]) -> list[Break]:
    """Every break between the two sides, in a stable order."""
    breaks: list[Break] = []
    for key in sorted(gateway.keys() | partner.keys()):
        ours, theirs = gateway.get(key), partner.get(key)
        if theirs is None or (ours is None and theirs.status != "SUCCESS"):
            if ours is not None:
                breaks.append(Break("MISSING_AT_PARTNER", *key, f"{ours.amount} {ours.currency}", ""))
            continue
        if ours is None:
            breaks.append(Break("MISSING_AT_GATEWAY", *key, "", f"{theirs.amount} {theirs.currency}"))
        elif theirs.status != "SUCCESS":
            breaks.append(Break("STATUS_MISMATCH", *key, "SUCCESS", theirs.status))
        elif ours.currency != theirs.currency:
            breaks.append(Break("CURRENCY_MISMATCH", *key, ours.currency, theirs.currency))
        elif ours.amount != theirs.amount:
            breaks.append(Break("AMOUNT_MISMATCH", *key, str(ours.amount), str(theirs.amount)))
    return breaks
