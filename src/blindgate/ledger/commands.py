"""`blindgate ledger check|close`: the operator's hands on the gateway's ledger.

    blindgate ledger check [--db URL]
        check the whole ledger; exit 1 and list the problems if broken.
    blindgate ledger close --date D [--db URL] [--network network.json | --zone Z --cutoff HH:MM]
        close business day D by hand (and so every day before it), once its cut-off has passed;
        the cut-off is the network file's ``business_day`` (default UTC 00:00). Postings of D
        that arrive later land in the next open day, so D's settlement batch never changes.
        Exit 0 closed (or already closed: said so), 2 refused (the day still runs, bad
        arguments), 3 the store cannot be used.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, time
from pathlib import Path

from blindgate.api.network import ConfigError, load_network
from blindgate.commandline import action, fail, parser
from blindgate.errors import EXIT_FOUND, EXIT_INPUT, EXIT_OK
from blindgate.ledger.calendar import Cutoff, close_business_day
from blindgate.ledger.check import check_ledger
from blindgate.ledger.errors import BusinessDayOpen
from blindgate.storage import resolve_db_url
from blindgate.storage.errors import STORE_FAILURES, explain
from blindgate.storage.migrate import open_current

PROG = "blindgate ledger"
_DB_HELP = "store URL (default: $BLINDGATE_DB, else the demo's gateway)"


def main(argv: list[str]) -> int:
    commands = parser(PROG, "check the gateway's ledger, close a business day")
    verbs = commands.add_subparsers(dest="action", required=True)
    check = action(verbs, "check", "check every ledger invariant over the whole store")
    check.add_argument("--db", help=_DB_HELP)
    close = action(verbs, "close", "close a business day by hand once its cut-off has passed")
    close.add_argument("--date", required=True, type=date.fromisoformat, help="business date, YYYY-MM-DD")
    close.add_argument("--db", help=_DB_HELP)
    close.add_argument("--network", type=Path, help="the network file: its business_day gives the cut-off")
    close.add_argument("--zone", default="UTC", help="time zone of the cut-off without --network (IANA)")
    close.add_argument("--cutoff", default=time(0), type=time.fromisoformat, help="local cut-off, HH:MM")
    args = commands.parse_args(argv)
    if args.action == "close":
        return close_day(args)
    return check_store(args.db)


def close_day(args: argparse.Namespace) -> int:
    try:
        cutoff = _cutoff(args)
    except (ConfigError, ValueError, OSError) as exc:
        return fail(PROG, exc, EXIT_INPUT)
    try:
        engine = open_current(resolve_db_url(args.db))
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    try:
        with engine.begin() as conn:
            closed = close_business_day(conn, cutoff, args.date, now=datetime.now(UTC))
    except BusinessDayOpen as still_open:
        return fail(PROG, f"not closed: {still_open}", EXIT_INPUT)
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    finally:
        engine.dispose()
    state = "closed" if closed else "already closed"
    print(json.dumps({"business_date": args.date.isoformat(), "state": state, "zone": cutoff.zone,
                      "cutoff": cutoff.at.isoformat("minutes")}))  # fmt: skip
    return EXIT_OK


def _cutoff(args: argparse.Namespace) -> Cutoff:
    if args.network is not None:
        gateway = load_network(args.network).gateway
        return Cutoff(gateway.business_day_zone, gateway.business_day_cutoff)
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(args.zone)
    except (ValueError, KeyError):
        raise ValueError("--zone is not an IANA time zone") from None
    return Cutoff(args.zone, args.cutoff)


def check_store(db: str | None) -> int:
    try:
        engine = open_current(resolve_db_url(db))
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
