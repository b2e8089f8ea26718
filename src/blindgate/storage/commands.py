"""`blindgate db upgrade|current [--db URL]`: bring a store to this release's schema, or show where it is.

``blindgate gateway`` upgrades its store on start; ``blindgate db upgrade`` does it by hand
(before starting several gateways at once, or so that ``blindgate ledger`` and ``settle``,
which refuse a store that is behind, can run). ``current`` prints the store's revision and
this release's as JSON, and exits 3 when they differ (docs/store.md).
"""

from __future__ import annotations

import json

from blindgate.commandline import action, fail, parser
from blindgate.errors import EXIT_OK, EXIT_PEER
from blindgate.storage import migrate
from blindgate.storage.errors import STORE_FAILURES, explain
from blindgate.storage.locate import resolve_db_url

PROG = "blindgate db"


def main(argv: list[str]) -> int:
    commands = parser(PROG, "the store's schema: upgrade it to this release's, or show its revision")
    sub = commands.add_subparsers(dest="action", required=True)
    for name, text in (
        ("upgrade", "create the store, or upgrade it to this release's schema"),
        ("current", "print the store's schema revision and this release's"),
    ):
        action(sub, name, text).add_argument(
            "--db", help="store URL (default: $BLINDGATE_DB, else the demo's gateway)"
        )
    args = commands.parse_args(argv)
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
