"""`blindgate db upgrade|current|purge`: bring a store to this release's schema, show where it is,
or purge what the gateway kept only for payments whose lifecycle has ended.

    blindgate db upgrade [--db URL]
    blindgate db current [--db URL]
    blindgate db purge --network network.json [--db URL] [--max-batches N]

``blindgate gateway`` upgrades its store on start; ``blindgate db upgrade`` does it by hand
(before starting several gateways at once, or so that ``blindgate ledger`` and ``settle``,
which refuse a store that is behind, can run). ``current`` prints the store's revision and
this release's as JSON, and exits 3 when they differ (docs/store.md). ``purge`` does by hand
what the gateway does every ``retention.purge_every_s`` (`blindgate.storage.retention`; the
windows come from the network file) and prints how many payments it purged, as JSON; a second
run purges nothing. Exit 2: a bad network file; 3: the store cannot be used.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from blindgate.api.network import ConfigError, load_network
from blindgate.commandline import action, fail, parser
from blindgate.errors import EXIT_INPUT, EXIT_OK, EXIT_PEER
from blindgate.storage import migrate, retention
from blindgate.storage.errors import STORE_FAILURES, explain
from blindgate.storage.locate import resolve_db_url

PROG = "blindgate db"
_DB_HELP = "store URL (default: $BLINDGATE_DB, else the demo's gateway)"


def main(argv: list[str]) -> int:
    commands = parser(PROG, "the store's schema: upgrade it to this release's, or show its revision")
    sub = commands.add_subparsers(dest="action", required=True)
    for name, text in (
        ("upgrade", "create the store, or upgrade it to this release's schema"),
        ("current", "print the store's schema revision and this release's"),
    ):
        action(sub, name, text).add_argument("--db", help=_DB_HELP)
    purge = action(sub, "purge", "purge the payer data of payments whose lifecycle has ended")
    purge.add_argument("--network", type=Path, required=True, help="the network file: its retention windows")
    purge.add_argument("--db", help=_DB_HELP)
    purge.add_argument(
        "--max-batches", type=int, default=None, help="stop after N transactions (default: all)"
    )
    args = commands.parse_args(argv)
    if args.action == "purge":
        return purge_store(args)
    try:
        url = resolve_db_url(args.db)
        engine = migrate.open_store(url) if args.action == "upgrade" else migrate.open_existing(url)
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    try:
        revision = migrate.current(engine)
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    finally:
        engine.dispose()
    print(json.dumps({"store": revision, "release": migrate.head()}))
    return EXIT_OK if revision == migrate.head() else EXIT_PEER


def purge_store(args: argparse.Namespace) -> int:
    if args.max_batches is not None and args.max_batches < 1:
        return fail(PROG, "--max-batches is at least 1", EXIT_INPUT)
    try:
        windows = load_network(args.network).gateway.retention
    except ConfigError as exc:
        return fail(PROG, exc, EXIT_INPUT)
    try:
        engine = migrate.open_current(resolve_db_url(args.db))
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    try:
        report = retention.purge(engine, windows, datetime.now(UTC), args.max_batches)
    except STORE_FAILURES as failure:
        return fail(PROG, *explain(failure))
    finally:
        engine.dispose()
    print(json.dumps({"purged": report.purged, "batches": report.batches}))
    return EXIT_OK
