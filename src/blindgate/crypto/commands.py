"""`blindgate keys`: create a party's key store, rotate one kind of key, print the public bundle.

    blindgate keys create DIR --party ID [--suite x25519|mlkem768x25519] [--signing-only]
    blindgate keys rotate DIR KIND [--suite SUITE]     (KIND: seal, pseudonym, rsa, ed25519)
    blindgate keys public DIR                          (the JSON bundle the party publishes)
    blindgate keys retire DIR --rotate-days N --retention-days M
                      (rotate the sealing key when it is N days old; destroy each old version
                       M days after it was superseded; a running agent does this itself
                       unless its agent file sets key_rotation to null: blindgate.agent.rotation)

Private keys never reach stdout (only the public bundle does). Exit status: 0 done; 2 bad
arguments, or a key store that is missing, unreadable or already there; errors are one
line on stderr (the statuses every `blindgate` command shares: `blindgate.errors`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta

from blindgate.commandline import action, parser, run_command
from blindgate.crypto.keystore import KINDS, KeyStore
from blindgate.crypto.sealing import DEFAULT_SUITE, SUITES


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return run_command("blindgate keys", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.action == "create":
        store = KeyStore.create(args.directory, args.party, suite=args.suite, signing_only=args.signing_only)
        print(f"created key store for {store.party_id} in {args.directory}", file=sys.stderr)
    elif args.action == "retire":
        store = KeyStore(args.directory)
        rotated, destroyed = store.retire_seal_keys(
            timedelta(days=args.rotate_days), timedelta(days=args.retention_days), datetime.now(UTC)
        )
        print(json.dumps({"rotated_to": rotated, "destroyed": destroyed}), file=sys.stderr)
    elif args.action == "rotate":
        store = KeyStore(args.directory)
        version = store.rotate(args.kind, suite=args.suite)
        print(f"{args.kind} key is now version {version}", file=sys.stderr)
    else:
        store = KeyStore(args.directory)
    print(json.dumps(store.public_bundle(), indent=2))
    return 0


def _parser() -> argparse.ArgumentParser:
    keys = parser("blindgate keys", "a party's keys: create, rotate, publish")
    actions = keys.add_subparsers(dest="action", required=True)
    create = action(actions, "create", "make a new key store (version 1 of every kind)")
    create.add_argument("directory")
    create.add_argument("--party", required=True, help="party id (also the sealing key id)")
    create.add_argument(
        "--suite", choices=SUITES, default=DEFAULT_SUITE, help="HPKE suite of the sealing key"
    )
    create.add_argument(
        "--signing-only", action="store_true", help="RSA and Ed25519 keys only (the gateway: no sealing key)"
    )
    rotate = action(actions, "rotate", "add a new current version of one kind of key")
    rotate.add_argument("directory")
    rotate.add_argument("kind", choices=KINDS)
    rotate.add_argument("--suite", choices=SUITES, default=None, help="switch the sealing suite (seal only)")
    retire = action(actions, "retire", "rotate the sealing key on schedule; destroy expired ones")
    retire.add_argument("directory")
    retire.add_argument("--rotate-days", type=float, required=True)
    retire.add_argument("--retention-days", type=float, required=True)
    public = action(actions, "public", "print the public key bundle")
    public.add_argument("directory")
    return keys
