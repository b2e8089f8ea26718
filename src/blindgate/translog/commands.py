"""``blindgate log``: run the transparency log or a witness, publish, monitor, verify, audit.

    blindgate log keygen OUT                       a new Ed25519 key (log, witness or identity)
    blindgate log serve --db URL --key FILE [--host H --port P] [--witness URL,PUBKEY ...]
    blindgate log witness --key FILE --log-key PUBKEY --state FILE [--host H --port P]
    blindgate log bundle --keys DIR --identity FILE --sequence N [--revoke KIND:V ...] [--out FILE]
    blindgate log append --log URL ENTRY            add an entry (a file of its JSON, or a receipt file)
    blindgate log monitor --log URL --log-key PUBKEY --partner ID --identity-key PUBKEY [--keys DIR]
    blindgate log verify RECEIPT [--log-key PUBKEY [--head FILE]] [--identity PARTY=PUBKEY ...]
    blindgate log audit --log URL --log-key PUBKEY --head FILE [--save]

``monitor`` reads every entry of the log, recomputes the tree and checks it against the
log's signed head (so no entry can be hidden from it), lists the entries about the
partner, and fails when a bundle under the partner's name is not signed by its identity
key, or names a key that the partner's key store (``--keys``) does not hold. ``verify``
needs no network: it checks every party's signature on a receipt file (as ``blindgate
psi``, ``train`` and ``predict`` write them) and, given the log's key, its inclusion;
``--identity PARTY=PUBKEY`` pins the identity key a party must have signed with (a key
file, or the party's PET certificate). ``append`` of a receipt file adds its entry and
rewrites the file with the inclusion proof. ``audit`` replays the whole log and checks it against a head saved
earlier (and, with ``--save``, saves the newest head in its place).

Its exit statuses are longer than the other commands' table (`LOG_EXIT_CODES`, in every
--help): a monitor tells a forged entry (4) from a key the partner never published (5) and a
split view (9). Messages go to stderr (`blindgate.commandline.run_command`) and name no key
bytes and no entry content.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from blindgate.commandline import parser as command_parser
from blindgate.commandline import run_command
from blindgate.crypto.encoding import b64url_decode
from blindgate.crypto.keystore import KeyStore
from blindgate.net.limits import add_limit_options, limits_from
from blindgate.translog import canonical, merkle
from blindgate.translog.entries import KEY_BUNDLE, Entry, PublishedKeys, key_bundle
from blindgate.translog.errors import (
    InconsistentLog,
    InvalidProof,
    KeyRefused,
    MalformedEntry,
    SignatureRefused,
    StateError,
)
from blindgate.translog.heads import SignedHead, generate_key_file, load_private_key, load_public_key
from blindgate.translog.receipts import RECEIPT_FORMAT, receipt_file, verify_receipt
from blindgate.translog.witness import write_atomically

PAGE = 1000
MAX_FILE_BYTES = 1 << 20


LOG_EXIT_CODES = """exit status (errors are one line on stderr; never a key byte or an entry's content):
  0  all is well
  1  another failure
  2  bad input: arguments, files, entries
  3  a proof failed; the log is inconsistent
  4  a signature is missing or wrong
  5  a key the partner did not publish (monitor)
  6  a witness refused
  7  the log or a witness did not answer
  8  a state or key file is unreadable
  9  a split view"""
LOG_KINDS = {
    1: "error", 2: "input error", 3: "proof failed", 4: "signature refused", 5: "key refused",
    6: "witness refused", 7: "log unavailable", 8: "state error", 9: "split view",
}  # fmt: skip


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    return run_command(f"blindgate log {args.action}", lambda: _run(args), LOG_KINDS)


def _run(args: argparse.Namespace) -> int:
    try:
        result: int = args.run(args)
        return result
    except ValueError as exc:  # a value in a file or an argument that does not parse
        raise MalformedEntry(f"{exc.__class__.__name__}: {exc}") from exc


# --- running services ---


def _serve(args: argparse.Namespace) -> int:
    from blindgate.net import serving
    from blindgate.net.observe import Observed
    from blindgate.translog.http import LOG_ROUTES, HttpWitness, log_app
    from blindgate.translog.log import TransparencyLog
    from blindgate.translog.store import LogStore, open_log_database

    witnesses = []
    for spec in args.witness:
        url, _, key_file = spec.partition(",")
        if not key_file:
            raise MalformedEntry("--witness is URL,PUBLIC_KEY_FILE")
        witnesses.append(HttpWitness(url, canonical.key_id(load_public_key(key_file))))
    log = TransparencyLog(LogStore(open_log_database(args.db)), load_private_key(args.key), witnesses)
    log.publish()
    # Metrics (requests by route and status, latency, open connections) and a log line per request.
    app = Observed(log_app(log), "translog", LOG_ROUTES)
    serving.serve(app, args.host, args.port, limits_from(args))
    return 0


def _witness(args: argparse.Namespace) -> int:
    from blindgate.net import serving
    from blindgate.net.observe import Observed
    from blindgate.translog.http import WITNESS_ROUTES, witness_app
    from blindgate.translog.witness import Witness

    witness = Witness(load_private_key(args.key), load_public_key(args.log_key), args.state)
    app = Observed(witness_app(witness), "witness", WITNESS_ROUTES)
    serving.serve(app, args.host, args.port, limits_from(args))
    return 0


# --- publishing ---


def _keygen(args: argparse.Namespace) -> int:
    key = generate_key_file(args.out)
    print(canonical.public_key_text(key.public_key()))
    print(f"key id {canonical.key_id(key.public_key())} written to {args.out}", file=sys.stderr)
    return 0


def _bundle(args: argparse.Namespace) -> int:
    revoked = []
    for spec in args.revoke:
        kind, _, version = spec.partition(":")
        if not version.isdigit():
            raise MalformedEntry("--revoke is KIND:VERSION (KIND: seal, ED25519, RSA256)")
        revoked.append((kind, int(version)))
    entry = key_bundle(
        KeyStore(args.keys),
        load_private_key(args.identity),
        sequence=args.sequence,
        valid_from_ms=time.time_ns() // 1_000_000,
        valid_until_ms=args.valid_until_ms,
        revoked=revoked,
    )
    _write_or_print(args.out, entry.data().decode() + "\n")
    return 0


def _append(args: argparse.Namespace) -> int:
    from blindgate.translog.http import HttpLogClient

    data = _read(args.entry).strip()
    receipt = _receipt_document(data)
    entry = Entry.from_json(receipt["entry"]) if receipt is not None else Entry.parse(data)
    log = HttpLogClient(args.log)
    index, head = log.add(entry)
    if receipt is not None:  # the file becomes a logged receipt, with its proof
        proven_at, proof = log.inclusion(entry.leaf_hash(), head.size)
        if proven_at != index:
            raise InvalidProof("the log proved the receipt at another index than it appended it")
        write_atomically(
            Path(args.entry), json.dumps(receipt_file(entry, index, head, proof), indent=1) + "\n"
        )
    print(json.dumps({"index": index, "size": head.size}))
    return 0


def _receipt_document(data: bytes) -> dict[str, Any] | None:
    """The receipt file ``data`` holds, or None when it is a bare entry."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("format") == RECEIPT_FORMAT else None


# --- checking ---


def _verify(args: argparse.Namespace) -> int:
    trusted = SignedHead.from_json(_json(args.head)) if args.head else None
    if trusted is not None and not args.log_key:
        raise MalformedEntry("--head needs --log-key")
    pinned = dict(_pinned_identity(spec) for spec in args.identity)
    log_key = load_public_key(args.log_key) if args.log_key else None
    verified = verify_receipt(_json(args.receipt), log_key, trusted, pinned.get)
    body = verified.entry.body
    parties = ", ".join(p["party"] for p in body["parties"])
    where = "included in the log" if verified.logged else "not in a log yet (no inclusion proof)"
    print(f"receipt {body['run_id']} ({body['kind']}) signed by {parties}: {where}")
    return 0


def _pinned_identity(spec: str) -> tuple[str, Any]:
    """``PARTY=FILE``: a key file (`load_public_key`) or a PEM certificate (a PET identity's)."""
    party, _, path = spec.partition("=")
    if not party or not path:
        raise MalformedEntry("--identity is PARTY=PUBLIC_KEY_FILE")
    if b"BEGIN CERTIFICATE" in _read(path):
        from cryptography import x509
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = x509.load_pem_x509_certificate(_read(path)).public_key()
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise MalformedEntry(f"{Path(path).name} does not certify an Ed25519 key")
        return party, key
    return party, load_public_key(path)


def _replay(log: Any, head: SignedHead, visit: Callable[[int, bytes], None]) -> None:
    """Read entries [0, head.size), recompute the root, and require the head's."""
    tree = merkle.CompactRange()
    for start in range(0, head.size, PAGE):
        for offset, data in enumerate(log.entries(start, min(start + PAGE, head.size))):
            tree.append(merkle.leaf_hash(data))
            visit(start + offset, data)
    if tree.root() != head.root:
        raise InconsistentLog(f"the log's entries do not make the tree of its signed head (size {head.size})")


def _audit(args: argparse.Namespace) -> int:
    from blindgate.translog.http import HttpLogClient

    log_key = load_public_key(args.log_key)
    saved = SignedHead.from_json(_json(args.head))
    saved.verify(log_key)
    log = HttpLogClient(args.log)
    latest = log.latest_head()
    latest.verify(log_key)
    if latest.size < saved.size:
        raise InconsistentLog(
            f"the log is smaller ({latest.size}) than the saved head ({saved.size}): truncated"
        )
    if saved.size > 0:
        merkle.verify_consistency(
            saved.size, latest.size, log.consistency(saved.size, latest.size), saved.root, latest.root
        )
    roots: dict[int, bytes] = {}
    tree = merkle.CompactRange()

    def remember(index: int, data: bytes) -> None:
        tree.append(merkle.leaf_hash(data))
        if index + 1 == saved.size:
            roots[saved.size] = tree.root()

    _replay(log, latest, remember)
    if saved.size > 0 and roots.get(saved.size) != saved.root:
        raise InconsistentLog("the log's entries do not make the tree of the saved head: rewritten")
    if args.save:
        write_atomically(Path(args.head), json.dumps(latest.to_json(), indent=1) + "\n")
    print(f"consistent: saved head size {saved.size}, log now {latest.size} entries, every entry replayed")
    return 0


def _monitor(args: argparse.Namespace) -> int:
    from blindgate.translog.http import HttpLogClient

    log_key, identity = load_public_key(args.log_key), load_public_key(args.identity_key)
    own = _own_keys(KeyStore(args.keys)) if args.keys else None
    log = HttpLogClient(args.log)
    head = log.latest_head()
    head.verify(log_key)
    forged: list[str] = []  # entries under the partner's name it did not sign
    foreign: list[str] = []  # keys under its name that it does not hold

    def check(index: int, data: bytes) -> None:
        entry = Entry.parse(data)
        if args.partner not in entry.parties():
            return
        print(f"#{index} {entry.type}")
        try:
            entry.check_signatures(lambda party: identity if party == args.partner else None)
        except SignatureRefused as exc:
            forged.append(f"#{index}: {exc}")
            return
        if entry.type == KEY_BUNDLE and own is not None:
            keys = PublishedKeys.of(entry)
            for (kind, version), public in [*keys.sealing.items(), *keys.signing.items()]:
                if own.get((kind, version)) != public:
                    foreign.append(f"#{index}: {kind} key version {version} is not one {args.partner} holds")

    _replay(log, head, check)
    for problem in forged + foreign:
        print(f"ALERT {problem}", file=sys.stderr)
    if forged:
        return SignatureRefused.exit_status
    return KeyRefused.exit_status if foreign else 0


def _own_keys(store: KeyStore) -> dict[tuple[str, int], bytes]:
    """Every public key (kind or suite, version) the partner's own store holds."""
    public = store.public_bundle()
    own: dict[tuple[str, int], bytes] = {}
    if "seal" in public:  # every seal version the store holds, with its suite
        for version in store.versions("seal"):
            recipient = store.opening_key(store.party_id, version).recipient
            own[(recipient.suite, version)] = recipient.public_bytes
    for version, text in public["ed25519"]["versions"].items():
        own[("ED25519", int(version))] = b64url_decode(text)
    for version, text in public["rsa"]["versions"].items():
        own[("RSA256", int(version))] = base64.b64decode(text)
    return own


# --- files ---


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise StateError(f"cannot read {Path(path).name}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise MalformedEntry(f"{Path(path).name} is larger than any file this command reads")
    return data


def _json(path: str) -> Any:
    try:
        return json.loads(_read(path))
    except ValueError as exc:
        raise MalformedEntry(f"{Path(path).name} is not JSON") from exc


def _write_or_print(path: str | None, text: str) -> None:
    if path:
        write_atomically(Path(path), text)
    else:
        sys.stdout.write(text)


def _parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "blindgate log", "the transparency log of keys, policies and data use", LOG_EXIT_CODES
    )
    actions = parser.add_subparsers(dest="action", required=True)

    def action(name: str, run: Callable[[argparse.Namespace], int], text: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(
            name,
            help=text,
            description=text,
            epilog=LOG_EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sub.set_defaults(run=run)
        return sub

    keygen = action("keygen", _keygen, "write a new Ed25519 private key (PEM) and print its public key")
    keygen.add_argument("out")
    serve = action("serve", _serve, "serve the log over HTTP")
    serve.add_argument(
        "--db", required=True, help="SQLAlchemy URL (sqlite:///log.db, postgresql+psycopg://...)"
    )
    serve.add_argument("--key", required=True, help="the log's private key (PEM)")
    serve.add_argument(
        "--witness", action="append", default=[], metavar="URL,PUBKEY", help="a witness to ask"
    )
    witness = action("witness", _witness, "serve a witness that cosigns the log's heads")
    witness.add_argument("--key", required=True, help="the witness's private key (PEM)")
    witness.add_argument("--log-key", required=True, help="the log's public key")
    witness.add_argument("--state", required=True, help="file holding the last head cosigned")
    for service in (serve, witness):
        service.add_argument("--host", default="127.0.0.1")
        service.add_argument("--port", type=int, default=8700)
        add_limit_options(service)
    bundle = action("bundle", _bundle, "a signed key bundle entry from a party's key store")
    bundle.add_argument("--keys", required=True, help="the party's key store directory")
    bundle.add_argument("--identity", required=True, help="the party's identity private key (PEM)")
    bundle.add_argument("--sequence", type=int, required=True, help="1 for the first bundle, then +1")
    bundle.add_argument("--revoke", action="append", default=[], metavar="KIND:VERSION")
    bundle.add_argument("--valid-until-ms", type=int, default=None)
    bundle.add_argument("--out", default=None)
    append = action("append", _append, "add an entry to the log")
    append.add_argument("--log", required=True, help="the log's URL")
    append.add_argument(
        "entry", help="file holding the entry's JSON, or a receipt file (rewritten with its proof)"
    )
    monitor = action("monitor", _monitor, "list a partner's entries; fail on any it did not sign or publish")
    monitor.add_argument("--log", required=True)
    monitor.add_argument("--log-key", required=True)
    monitor.add_argument("--partner", required=True)
    monitor.add_argument("--identity-key", required=True, help="the partner's identity public key")
    monitor.add_argument("--keys", default=None, help="the partner's key store: every key it published")
    verify = action("verify", _verify, "check a receipt file offline")
    verify.add_argument("receipt")
    verify.add_argument(
        "--log-key", default=None, help="the log's public key: the receipt must be in the log"
    )
    verify.add_argument("--head", default=None, help="a tree head the reader trusts (JSON)")
    verify.add_argument(
        "--identity",
        action="append",
        default=[],
        metavar="PARTY=PUBKEY",
        help="the identity key PARTY must have signed with (key file or PET certificate)",
    )
    audit = action("audit", _audit, "replay the whole log and check it extends a saved head")
    audit.add_argument("--log", required=True)
    audit.add_argument("--log-key", required=True)
    audit.add_argument("--head", required=True, help="a head saved earlier (JSON); --save replaces it")
    audit.add_argument("--save", action="store_true")
    return parser
