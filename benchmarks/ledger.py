"""Ledger and settlement speed. Prints one JSON object.

1. Postings per second through the public posting functions (pending + capture of one
   payment per transaction, as the gateway posts), on SQLite (WAL, file) and on PostgreSQL
   (BLINDGATE_TEST_PG, a throw-away schema); the ratio between them.
2. Settlement of a day of N payments (default 1,000,000) generated straight into the ledger
   tables in bulk (each payment's capture entry and its six posted lines, 1% refunded):
   the time to compute and record the batches (SQL aggregates), the time to write the files,
   and, as the alternative in the same run, the time to total the batches in Python from the
   streamed rows; the ratio between the two ways of totalling.

Usage: .venv/bin/python benchmarks/ledger.py [--postings 2000] [--payments 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from blindgate.ledger import (
    Cutoff,
    FeeSchedule,
    PaymentTerms,
    check_ledger,
    close_business_day,
    post_payment_captured,
    post_payment_pending,
)
from blindgate.ledger.money import convert, fee
from blindgate.settlement import settle_day, write_settlement_files
from blindgate.settlement.batches import day_items
from blindgate.storage import open_engine
from blindgate.storage.migrate import open_store, upgrade

PG_URL = os.environ.get("BLINDGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DAY = date(2026, 11, 24)
START = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
FEES = FeeSchedule(merchant_discount_rate=Decimal("0.025"), wallet_share_rate=Decimal("0.008"))
ACQUIRERS = [("ACQ_US", "USD"), ("ACQ_JP", "JPY"), ("ACQ_EU", "EUR")]
WALLETS = [("WAL_CN", "CNY", {"USD": "7.1234", "JPY": "0.0471", "EUR": "7.7012"}),
           ("WAL_KW", "KWD", {"USD": "0.3071", "JPY": "0.00205", "EUR": "0.3321"})]  # fmt: skip


def postings_per_second(engine: sa.Engine, payments: int) -> float:
    upgrade(engine)
    began = time.perf_counter()
    for index in range(payments):
        terms = PaymentTerms(f"bench-{index}", "ACQ_US", "WAL_CN", "USD", 1_000 + index, "CNY",
                             Decimal("7.1234"), "q1", FEES)  # fmt: skip
        with engine.begin() as conn:
            post_payment_pending(conn, terms, at=START)
            post_payment_captured(conn, terms.payment_id, at=START)
    return 2 * payments / (time.perf_counter() - began)


def on_postgres(payments: int) -> float | None:
    schema = f"ledger_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError:
        return None
    engine = open_engine(f"{PG_URL}?options=-csearch_path%3D{schema}")
    try:
        return postings_per_second(engine, payments)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


ENTRY_COLUMNS = (
    "id", "event_key", "event_type", "payment_id", "business_date", "occurred_at", "acquirer_id",
    "wallet_id", "currency", "amount", "wallet_currency", "wallet_amount", "fx_rate", "quote_id",
    "acquirer_fee", "wallet_fee",
)  # fmt: skip
LINE_COLUMNS = ("entry_id", "owner", "kind", "currency", "bucket", "amount")


def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def generate_day(path: Path, payments: int) -> None:
    """Bulk-load a day of captured payments (and 1% refunds) with the ledger's own figures."""
    open_store(f"sqlite:///{path}").dispose()
    rng = random.Random(7)
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    entry_rows, line_rows = [], []
    for index in range(1, payments + 1):
        acquirer, currency = ACQUIRERS[index % len(ACQUIRERS)]
        wallet, wallet_currency, rates = WALLETS[index % len(WALLETS)]
        amount = rng.randint(100, 500_000)
        rate = Decimal(rates[currency])
        wallet_amount = convert(amount, currency, wallet_currency, rate)
        acquirer_fee, wallet_fee = (
            fee(amount, FEES.merchant_discount_rate),
            fee(wallet_amount, FEES.wallet_share_rate),
        )
        refund = index % 100 == 0
        kind, key, sign = (
            ("REFUND", f"refund:r{index}", -1) if refund else ("CAPTURE", f"resolve:p{index}", 1)
        )
        at = (START + timedelta(microseconds=index * 80_000)).replace(tzinfo=None).isoformat(sep=" ")
        payment = (index, key, kind, f"p{index}", DAY.isoformat(), at, acquirer, wallet, currency, amount)
        entry_rows.append(
            (*payment, wallet_currency, wallet_amount, str(rate), "q1", acquirer_fee, wallet_fee)
        )
        for owner, account, code, value in (
            (wallet, "wallet_receivable", wallet_currency, wallet_amount - wallet_fee),
            ("gateway", "fee_income", wallet_currency, wallet_fee),
            ("gateway", "fx_position", wallet_currency, -wallet_amount),
            ("gateway", "fx_position", currency, amount),
            (acquirer, "acquirer_payable", currency, -(amount - acquirer_fee)),
            ("gateway", "fee_income", currency, -acquirer_fee),
        ):
            if value:
                line_rows.append((index, owner, account, code, "posted", sign * value))
        if len(entry_rows) >= 50_000 or index == payments:
            db.executemany(_insert_sql("ledger_entries", ENTRY_COLUMNS), entry_rows)
            db.executemany(_insert_sql("ledger_lines", LINE_COLUMNS), line_rows)
            db.commit()
            entry_rows, line_rows = [], []
    db.close()


def copy_day(path: Path, url: str) -> None:
    """The day `generate_day` wrote at ``path`` copied into the (fresh) PostgreSQL store at ``url``
    with COPY, its times floored to the second as the ledger keeps them; the entries' sequence
    moved past the copied ids, so live postings go on after them."""
    engine = open_store(url)
    source = sqlite3.connect(path)
    try:
        with engine.begin() as conn:
            driver = conn.connection.driver_connection
            cursor = driver.cursor()
            cursor.execute("SET LOCAL TIME ZONE 'UTC'")
            at = ENTRY_COLUMNS.index("occurred_at")
            for table, columns, adjust in (
                ("ledger_entries", ENTRY_COLUMNS, lambda row: (*row[:at], row[at][:19], *row[at + 1 :])),
                ("ledger_lines", LINE_COLUMNS, lambda row: row),
            ):
                names = ", ".join(columns)
                with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in source.execute(f"SELECT {names} FROM {table} ORDER BY id"):
                        copy.write_row(adjust(row))
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('ledger_entries', 'id'), max(id)) FROM ledger_entries"
            )
            cursor.execute("ANALYZE ledger_entries, ledger_lines")  # the planner's figures for the day
    finally:
        source.close()
        engine.dispose()


def python_totals(engine: sa.Engine) -> dict[tuple[str, str], int]:
    """The alternative: stream every settled row into Python and total the nets there."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    with engine.connect() as conn:
        for item in day_items(conn, DAY):
            sign = 1 if item["event_type"] == "CAPTURE" else -1
            totals[(item["acquirer_id"], item["currency"])] += sign * (item["amount"] - item["acquirer_fee"])
            totals[(item["wallet_id"], item["wallet_currency"])] += sign * (
                item["wallet_amount"] - item["wallet_fee"]
            )
    return totals


def settlement_day(payments: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "day.db"
        began = time.perf_counter()
        generate_day(path, payments)
        generated = time.perf_counter() - began
        engine = open_store(f"sqlite:///{path}")
        began = time.perf_counter()
        with engine.begin() as conn:
            close_business_day(conn, Cutoff(), DAY, now=START + timedelta(days=1))
            found = settle_day(conn, DAY, now=START + timedelta(days=1))
        batches_s = time.perf_counter() - began
        began = time.perf_counter()
        with engine.connect() as conn:
            written = write_settlement_files(conn, DAY, found, Path(folder) / "out")
        files_s = time.perf_counter() - began
        began = time.perf_counter()
        totals = python_totals(engine)
        python_s = time.perf_counter() - began
        assert all(totals[(b.partner_id, b.currency)] == b.net_amount for b in found), (
            "the two totals disagree"
        )
        began = time.perf_counter()
        with engine.connect() as conn:
            report = check_ledger(conn)
        check_s = time.perf_counter() - began
        assert report.ok, report.problems
        engine.dispose()
        return {
            "payments": payments,
            "generate_s": round(generated, 2),
            "batches_sql_s": round(batches_s, 2),
            "batches_python_s": round(python_s, 2),
            "python_over_sql": round(python_s / batches_s, 2),
            "files_s": round(files_s, 2),
            "settlement_total_s": round(batches_s + files_s, 2),
            "files": len(written),
            "bytes": sum(p.stat().st_size for p in written),
            "ledger_check_s": round(check_s, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postings", type=int, default=2_000, help="payments posted (2 postings each)")
    parser.add_argument("--payments", type=int, default=1_000_000, help="payments in the settled day")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        sqlite_rate = postings_per_second(open_store(f"sqlite:///{Path(folder) / 'bench.db'}"), args.postings)
    pg_rate = on_postgres(args.postings)
    result: dict[str, object] = {
        "postings_per_s": {
            "sqlite": round(sqlite_rate),
            "postgresql": None if pg_rate is None else round(pg_rate),
            "postgresql_over_sqlite": None if pg_rate is None else round(pg_rate / sqlite_rate, 2),
            "payments": args.postings,
        },
        "settlement_day": settlement_day(args.payments),
        "cores": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
