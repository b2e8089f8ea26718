"""The settlement files partners expect, in the Alipay+ style, one pair per batch:

- ``settlementSummary_<partner>_<currency>_<batchId>_<seq>.csv``: one row per type
  PAYMENT / REFUND / CANCEL / TOTAL with count, gross, fee and net amounts;
- ``settlementItems_<partner>_<currency>_<batchId>_<seq>.csv``: one row per transaction
  (transactionId, type, amounts in both currencies, quote, fees, net, times).

Amounts are integers of minor units of the stated currency (the AMS ``value`` convention),
signed from the partner's side (see ``batches``). Files are written under a temporary name
and renamed, so a reader never sees half a file. They carry partner, payment and refund ids
and figures only; nothing about a payer.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from contextlib import ExitStack
from datetime import UTC, date
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from blindgate.ledger.postings import CAPTURE, stored_utc
from blindgate.settlement.batches import TYPE_NAMES, Batch, Totals, day_items

SEQ = "001"
SUMMARY_COLUMNS = [
    "settlementBatchId", "participantId", "participantRole", "settlementCurrency", "businessDate",
    "transactionType", "count", "grossAmount", "feeAmount", "netAmount",
]  # fmt: skip
ITEM_COLUMNS = [
    "settlementBatchId", "transactionId", "transactionType", "paymentId", "transactionAmount",
    "transactionCurrency", "settlementAmount", "settlementCurrency", "quoteId", "quotePrice", "feeAmount",
    "netAmount", "transactionTime", "businessDate",
]  # fmt: skip


def summary_name(batch: Batch) -> str:
    return f"settlementSummary_{batch.partner_id}_{batch.currency}_{batch.batch_id}_{SEQ}.csv"


def items_name(batch: Batch) -> str:
    return f"settlementItems_{batch.partner_id}_{batch.currency}_{batch.batch_id}_{SEQ}.csv"


def _summary_rows(batch: Batch) -> Iterable[list[object]]:
    head = [batch.batch_id, batch.partner_id, batch.role, batch.currency, batch.business_date.isoformat()]
    for kind in ("PAYMENT", "REFUND", "CANCEL"):
        totals = batch.by_type.get(kind, Totals())
        yield [*head, kind, totals.count, totals.gross, totals.fee, totals.net]
    total = batch.total
    yield [*head, "TOTAL", total.count, total.gross, total.fee, total.net]


def transaction_id(event_key: str) -> str:
    """The id partners know an event by: the payment id, or the refund id for a refund."""
    return event_key.split(":", 1)[1]


def _item_rows(item: sa.RowMapping) -> tuple[list[object], list[object]]:
    """The acquirer's and the wallet's item rows of one settled event (batch id left blank)."""
    sign = 1 if item["event_type"] == CAPTURE else -1
    amount, wallet_amount = sign * item["amount"], sign * item["wallet_amount"]
    acquirer_fee, wallet_fee = sign * item["acquirer_fee"], sign * item["wallet_fee"]
    head = [transaction_id(item["event_key"]), TYPE_NAMES[item["event_type"]], item["payment_id"], amount,
            item["currency"]]  # fmt: skip
    quote = [item["quote_id"] or "", item["fx_rate"]]
    times = [stored_utc(item["occurred_at"]).astimezone(UTC).isoformat(), item["business_date"].isoformat()]
    return (
        ["", *head, amount, item["currency"], *quote, acquirer_fee, amount - acquirer_fee, *times],
        [
            "",
            *head,
            wallet_amount,
            item["wallet_currency"],
            *quote,
            wallet_fee,
            wallet_amount - wallet_fee,
            *times,
        ],
    )


def _publish(handle: IO[str], final: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(handle.name, final)


def _discard_unpublished(handles: list[IO[str]]) -> None:
    for handle in handles:
        if not handle.closed:
            handle.close()
            Path(handle.name).unlink(missing_ok=True)


def write_settlement_files(conn: sa.Connection, day: date, found: list[Batch], out: Path) -> list[Path]:
    """Write every batch's summary and items file under ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for batch in found:
        path = out / summary_name(batch)
        with open(path.with_suffix(".tmp"), "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(SUMMARY_COLUMNS)
            writer.writerows(_summary_rows(batch))
            _publish(handle, path)
        written.append(path)
    by_side = {(b.role, b.partner_id, b.currency): b for b in found}
    with ExitStack() as stack:
        handles = {
            key: stack.enter_context(open(out / (items_name(b) + ".tmp"), "w", newline=""))
            for key, b in by_side.items()
        }
        # Whatever happens before publishing, no half-written file stays behind.
        stack.callback(_discard_unpublished, list(handles.values()))
        writers = {key: csv.writer(handle) for key, handle in handles.items()}
        for writer in writers.values():
            writer.writerow(ITEM_COLUMNS)
        for item in day_items(conn, day):
            acquirer_row, wallet_row = _item_rows(item)
            acquirer_key = ("ACQUIRER", item["acquirer_id"], item["currency"])
            wallet_key = ("WALLET", item["wallet_id"], item["wallet_currency"])
            acquirer_row[0], wallet_row[0] = by_side[acquirer_key].batch_id, by_side[wallet_key].batch_id
            writers[acquirer_key].writerow(acquirer_row)
            writers[wallet_key].writerow(wallet_row)
        for key, handle in handles.items():
            final = out / items_name(by_side[key])
            _publish(handle, final)
            written.append(final)
    return written
