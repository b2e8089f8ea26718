"""`blindgate ledger check [--db URL]`: check the whole ledger; exit 1 and list problems if broken."""

from __future__ import annotations

import json

from blindgate.commandline import action, fail, parser
from blindgate.errors import EXIT_FOUND, EXIT_OK
from blindgate.ledger.check import check_ledger
from blindgate.storage import resolve_db_url
from blindgate.storage.errors import STORE_FAILURES, explain
from blindgate.storage.migrate import open_current

PROG = "blindgate ledger"


def main(argv: list[str]) -> int:
    commands = parser(PROG, "check the gateway's ledger")
    check = action(
        commands.add_subparsers(dest="action", required=True),
        "check",
        "check every ledger invariant over the whole store",
    )
    check.add_argument("--db", help="store URL (default: $BLINDGATE_DB, else the demo's gateway)")
    args = commands.parse_args(argv)
    try:
        engine = open_current(resolve_db_url(args.db))
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    try:
        with engine.connect() as conn:
            report = check_ledger(conn)
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
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
    return EXIT_OK if report.ok else EXIT_FOUND
