"""`blindgate settle --date D --out DIR [--db URL]`: settle a closed business day and write its files.

The day must be closed: by the gateway (``blindgate demo`` closes its day), or by its cut-off
having passed (``--zone``/``--cutoff``, default UTC 00:00), in which case settling closes it.
A day still open is refused with nothing written. Settling again rewrites the same files.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, time
from pathlib import Path

from blindgate.commandline import fail, parser
from blindgate.errors import EXIT_INPUT, EXIT_OK
from blindgate.ledger.calendar import Cutoff
from blindgate.ledger.errors import LedgerError
from blindgate.settlement.batches import settle
from blindgate.settlement.files import write_settlement_files
from blindgate.storage import resolve_db_url
from blindgate.storage.errors import STORE_FAILURES, explain
from blindgate.storage.migrate import open_current

PROG = "blindgate settle"


def _parser() -> argparse.ArgumentParser:
    command = parser(PROG, "write a business day's settlement files")
    command.add_argument("--date", required=True, type=date.fromisoformat, help="business date, YYYY-MM-DD")
    command.add_argument("--out", required=True, type=Path, help="folder for the settlement files")
    command.add_argument("--db", help="store URL (default: $BLINDGATE_DB, else the demo's gateway)")
    command.add_argument("--zone", default="UTC", help="time zone of the daily cut-off (IANA name)")
    command.add_argument("--cutoff", default=time(0), type=time.fromisoformat, help="local cut-off, HH:MM")
    return command


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        engine = open_current(resolve_db_url(args.db))
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    try:
        found = settle(engine, args.date, now=datetime.now(UTC), cutoff=Cutoff(args.zone, args.cutoff))
        with engine.connect() as conn:
            written = write_settlement_files(conn, args.date, found, args.out)
    except LedgerError as refused:
        return fail(PROG, refused, EXIT_INPUT)
    except OSError as failure:
        return fail(PROG, f"cannot write the files ({failure.__class__.__name__})", EXIT_INPUT)
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
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
    return EXIT_OK
