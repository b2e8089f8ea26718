"""``blindgate console``: the web console beside the gateway, and its users.

    blindgate console serve --db URL --users users.json [--reports DIR] [--title T]
                            [--translog-db URL [--log-key FILE] [--witness-key FILE ...]]
                            [--network FILE --payers CSV]
                            [--host 127.0.0.1] [--port 8300] [--secret-file FILE] [--secure-cookie]
    blindgate console add-user --users users.json --name N --role operator|regulator|partner
                               [--party PARTY_ID]          (the password is read from stdin)

``serve`` reads the gateway's store (``--db``, the gateway's own URL) and never writes it; nor
the log's (``--translog-db``), whose heads and receipts it verifies with ``--log-key`` (the log's
public key file, as `blindgate log keygen` wrote it) and whose witnesses' cosignatures it
verifies with ``--witness-key`` (each witness's public key file). ``--network`` and ``--payers`` (the ground
truth `blindgate audit linkage` reads) let the linkage page measure on request.
It listens on loopback by default and speaks plain HTTP: put it behind TLS (and pass
``--secure-cookie``) anywhere else. Exit 2 for a bad users file or arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from blindgate.commandline import action, fail
from blindgate.commandline import parser as command_parser
from blindgate.console.users import ROLES, UsersFileError, add_user, load_users
from blindgate.errors import EXIT_INPUT, EXIT_OK
from blindgate.net.limits import add_limit_options, limits_from

PROG = "blindgate console"


def main(argv: list[str]) -> int:
    parser = command_parser(PROG, "the web console")
    verbs = parser.add_subparsers(dest="verb", required=True)
    serve = action(verbs, "serve", "serve the console")
    serve.add_argument("--db", required=True, help="the gateway's store URL (read only)")
    serve.add_argument("--users", type=Path, required=True, help="the users file")
    serve.add_argument("--reports", type=Path, help="folder of privacy, reconciliation and PET reports")
    serve.add_argument("--translog-db", help="the transparency log's store URL (read only)")
    serve.add_argument("--log-key", type=Path, help="the log's public key: verify its heads and inclusions")
    serve.add_argument(
        "--witness-key",
        type=Path,
        action="append",
        default=[],
        help="a witness's public key (repeat for each): verify the heads' cosignatures (needs --log-key)",
    )
    serve.add_argument("--network", type=Path, help="the network file (the linkage measure's business day)")
    serve.add_argument("--payers", type=Path, help="CSV payment_id,payer: lets the linkage page measure")
    serve.add_argument("--title", default="blindgate", help="the network's name on every page")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8300)
    serve.add_argument(
        "--secret-file", type=Path, help="the session key (32+ bytes); default: fresh per start"
    )
    serve.add_argument("--secure-cookie", action="store_true", help="cookies only over HTTPS (behind TLS)")
    add_limit_options(serve)
    add = action(verbs, "add-user", "add or replace a user (password on stdin)")
    add.add_argument("--users", type=Path, required=True)
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--party", help="a partner user's party id")
    args = parser.parse_args(argv)
    if args.verb == "serve" and (args.network is None) != (args.payers is None):
        parser.error("--network and --payers go together (the linkage measure needs both)")
    if args.verb == "add-user":
        try:
            add_user(args.users, args.name, args.role, sys.stdin.readline().rstrip("\n"), args.party)
        except UsersFileError as exc:
            return fail(PROG, exc, EXIT_INPUT)
        return EXIT_OK
    return serve_console(args)


def serve_console(args: argparse.Namespace) -> int:
    from blindgate import logs
    from blindgate.api.observe import observed
    from blindgate.console.app import PAGES, create_console_app
    from blindgate.net import serving
    from blindgate.translog.errors import TranslogError
    from blindgate.translog.heads import load_public_key

    try:
        users = load_users(args.users)
        secret = args.secret_file.read_bytes() if args.secret_file else None
        if secret is not None and len(secret) < 32:
            raise UsersFileError("the secret file holds fewer than 32 bytes")
        log_key = load_public_key(args.log_key) if args.log_key else None
        witness_keys = [load_public_key(path) for path in args.witness_key]
    except (UsersFileError, OSError, TranslogError) as exc:
        return fail(PROG, exc, EXIT_INPUT)
    logs.configure(None)
    app = create_console_app(
        args.db,
        users,
        reports=args.reports,
        translog=args.translog_db,
        log_key=log_key,
        witness_keys=witness_keys,
        network=args.network,
        payers=args.payers,
        secret=secret,
        title=args.title,
        secure_cookie=args.secure_cookie,
    )
    served = observed(app, "console", PAGES)  # metrics and a log line per request, like every service
    serving.serve(served, args.host, args.port, limits_from(args))
    return 0
