"""`blindgate ledger check [--db URL]`: check the whole ledger; exit 1 and list problems if broken."""

from __future__ import annotations

import argparse
import json
import sys

import sqlalchemy as sa

from blindgate.ledger.check import check_ledger
from blindgate.ledger.schema import entries
from blindgate.ledger.store import NoStore, open_store, resolve_db_url


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="blindgate ledger", description="check the gateway's ledger")
    sub = parser.add_subparsers(dest="action", required=True)
    check = sub.add_parser("check", help="check every ledger invariant over the whole store")
    check.add_argument("--db", help="store URL (default: $BLINDGATE_DB, else the demo's gateway)")
    args = parser.parse_args(argv)
    try:
        url = resolve_db_url(args.db)
    except NoStore as missing:
        print(f"blindgate ledger: {missing}", file=sys.stderr)
        return 2
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(entries.name):
                print("blindgate ledger: the store has no ledger tables", file=sys.stderr)
                return 2
            report = check_ledger(conn)
    except sa.exc.DBAPIError as failure:
        print(f"blindgate ledger: cannot read the store ({failure.__class__.__name__})", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    summary = {
        "ok": report.ok,
        "entries": report.entries,
        "lines": report.lines,
        "posted_volume": report.currencies,
        "problems": report.problems,
    }
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0 if report.ok else 1
