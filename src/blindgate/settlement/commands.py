"""`blindgate settle --date D --out DIR [--db URL]`: settle a closed business day and write its files.

The day must be closed: by the gateway (``blindgate demo`` closes its day), or by its cut-off
having passed (``--zone``/``--cutoff``, default UTC 00:00), in which case settling closes it.
A day still open is refused with nothing written. Settling again rewrites the same files.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime, time
from pathlib import Path

import sqlalchemy as sa

from blindgate.ledger.calendar import Cutoff
from blindgate.ledger.errors import LedgerError
from blindgate.ledger.schema import create_tables
from blindgate.ledger.store import NoStore, open_store, resolve_db_url
from blindgate.settlement.batches import settle_day
from blindgate.settlement.files import write_settlement_files


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="blindgate settle", description="write a business day's settlement files"
    )
    parser.add_argument("--date", required=True, type=date.fromisoformat, help="business date, YYYY-MM-DD")
    parser.add_argument("--out", required=True, type=Path, help="folder for the settlement files")
    parser.add_argument("--db", help="store URL (default: $BLINDGATE_DB, else the demo's gateway)")
    parser.add_argument("--zone", default="UTC", help="time zone of the daily cut-off (IANA name)")
    parser.add_argument("--cutoff", default=time(0), type=time.fromisoformat, help="local cut-off, HH:MM")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        engine = open_store(resolve_db_url(args.db))
    except NoStore as missing:
        print(f"blindgate settle: {missing}", file=sys.stderr)
        return 2
    try:
        create_tables(engine)
        with engine.begin() as conn:
            found = settle_day(conn, args.date, now=datetime.now(UTC), cutoff=Cutoff(args.zone, args.cutoff))
        with engine.connect() as conn:
            written = write_settlement_files(conn, args.date, found, args.out)
    except LedgerError as refused:
        print(f"blindgate settle: {refused}", file=sys.stderr)
        return 2
    except (sa.exc.DBAPIError, OSError) as failure:
        print(f"blindgate settle: cannot settle ({failure.__class__.__name__})", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    summary = {
        "business_date": args.date.isoformat(),
        "batches": [
            {
                "batch_id": b.batch_id,
                "partner": b.partner_id,
                "role": b.role,
                "currency": b.currency,
                "count": b.total.count,
                "net": b.net_amount,
            }
            for b in found
        ],
        "files": [str(path) for path in written],
    }
    print(json.dumps(summary, indent=2))
    return 0
