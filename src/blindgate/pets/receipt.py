"""Data-use receipts of PET runs: one per ``psi``, ``train`` or ``predict`` run, signed by both parties.

Over the run's own pinned-TLS channel, the two parties make one receipt
(`blindgate.translog.entries.receipt_body`) and sign it, each with its own long-term
identity key:

0. At the start, before any data is shared (`Recorder.check_peer`), each sends its party
   id, identity public key, the run's kind and purpose and the code's version and digest;
   a difference, or a key that is not the peer's (below), stops the run there.
1. At the end, each sends its *part*: the same, and a commitment to its input (row count and
   ``sha256(salt || sha256(input file))``, the salt kept by the party), the outputs it
   received, what it saw (the run's view: item and class) and its start and end times.
2. Each merges the two parts into the same body (parties sorted; the run id from both
   parties' random nonces; the earlier start and the later end), refusing parts that
   name another purpose, other code or another kind of run. It checks that the identity
   key the peer named is the peer's: the key of the certificate it pinned for this
   channel, or the key given with ``--peer-identity-key``; any other key is refused
   before anything is signed.
3. Each signs the body and the signatures are exchanged; the peer's is checked.

Each party then writes the *receipt file* (`blindgate.translog.receipts`) beside its
outputs, and its *opening* (the salt and the input's digest, mode 0600) beside that, so
that it can later show an auditor which input the commitment stands for. Given ``--log
URL``, it appends the entry to the transparency log (both parties may: the log keeps one
leaf for one entry) and the receipt file carries the inclusion proof; without it the file
holds both signatures and no proof, and ``blindgate log append`` adds it later.
``blindgate log verify RECEIPT`` checks either kind offline.

Identity keys: by default the Ed25519 key of the party's PET identity (``blindgate
keygen``), the one its peer pins; ``--identity-key FILE`` signs with another Ed25519 key
instead, e.g. the partner's transparency-log identity (``blindgate log keygen``), under
which ``blindgate log monitor`` recognises the partner's receipts. Party ids default to
the certificate's name (``keygen --name``).

What a receipt holds: ids, public keys, digests, counts, times and short labels; never a
row, a key value or a score. What the peer learns from a part beyond the run itself: the
commitment (useless without the salt), the input's row count and the party's view labels.
The dealer of a logistic-regression run sees random correlations only and signs nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

import blindgate
from blindgate.errors import EXIT_PEER, BlindgateError
from blindgate.fileio import write_atomically
from blindgate.net import Channel, Identity, MalformedFrame
from blindgate.translog import canonical, entries
from blindgate.translog.errors import TranslogError
from blindgate.translog.receipts import receipt_file, unlogged_receipt_file

PART_FORMAT: Final = "blindgate-receipt-part/1"
MAX_PART_BYTES: Final = 64 * 1024
SALT_BYTES: Final = 16


class ReceiptError(BlindgateError):
    """The peer's part or signature of the run's receipt cannot be accepted (exit 3)."""

    exit_status = EXIT_PEER


class ReceiptSettingsError(BlindgateError):
    """A receipt option that cannot work: a bad party id or purpose, an unreadable key (exit 2)."""


class LogAppendFailed(BlindgateError):
    """The receipt is written and signed, but the log did not take it (exit 3)."""

    exit_status = EXIT_PEER


def add_receipt_options(p: argparse.ArgumentParser, default_purpose: str) -> None:
    group = p.add_argument_group("data-use receipt (both parties sign one per run; docs/transparency.md)")
    group.add_argument(
        "--purpose",
        default=default_purpose,
        help=f"why the data is used; both give the same (default {default_purpose!r})",
    )
    group.add_argument("--party-id", help="this party's id in the receipt (default: its certificate's name)")
    group.add_argument("--log", metavar="URL", help="the transparency log to append the receipt to")
    group.add_argument(
        "--identity-key",
        type=Path,
        help="Ed25519 private key (PEM) that signs the receipt (default: the TLS identity's key)",
    )
    group.add_argument(
        "--peer-identity-key",
        type=Path,
        help="the peer's receipt key, when it is not its pinned certificate's (key file or PEM)",
    )


def passed_on(args: argparse.Namespace) -> list[str]:
    """The receipt options again, for a party's own process (the one-command launchers)."""
    out = ["--purpose", args.purpose]
    if args.log:
        out += ["--log", args.log]
    return out


@dataclass
class Recorder:
    """One party's side of a run's receipt, from the run's start to its receipt file."""

    kind: str
    purpose: str
    party_id: str
    key: ed25519.Ed25519PrivateKey
    peer_keys: list[ed25519.Ed25519PublicKey]  # the identity keys the peer may sign with
    log_url: str | None
    started_at_ms: int
    input_sha256: bytes
    salt: bytes

    @classmethod
    def start(
        cls,
        kind: str,
        args: argparse.Namespace,
        identity: Identity,
        peer_certs: Sequence[bytes],
        input_file: Path,
    ) -> Recorder:
        """Read the options and hash the input now, before the run: a bad option fails first."""
        started = _now_ms()
        purpose = args.purpose
        if not (isinstance(purpose, str) and 0 < len(purpose) <= entries.MAX_LABEL and purpose.isprintable()):
            raise ReceiptSettingsError(f"--purpose is printable text of 1 to {entries.MAX_LABEL} characters")
        party_id = args.party_id or _certificate_name(identity.cert_pem)
        if not entries.is_party_id(party_id):
            raise ReceiptSettingsError(
                "--party-id takes letters, digits, '.', '_' and '-' (at most 64), "
                "starting with a letter or digit"
            )
        key = _private_key(args.identity_key) if args.identity_key else _tls_key(identity)
        if args.peer_identity_key:
            peer_keys = [_public_key(args.peer_identity_key)]
        else:
            peer_keys = [_certificate_key(pem) for pem in peer_certs]
        return cls(
            kind,
            purpose,
            party_id,
            key,
            peer_keys,
            args.log,
            started,
            _file_digest(input_file),
            secrets.token_bytes(SALT_BYTES),
        )

    # --- at the start of the run, before any data is shared ---

    def check_peer(self, channel: Channel) -> None:
        """Exchange what the receipt will need both to share (kind, purpose, code, identity),
        so that a difference stops the run before its work, not after it (refused: exit 3)."""
        mine = self._settings()
        frame = channel.exchange(json.dumps(mine).encode())
        try:
            theirs = json.loads(frame) if len(frame) <= MAX_PART_BYTES else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedFrame("expected the peer's receipt settings") from exc
        if not isinstance(theirs, dict) or set(theirs) != set(mine) or theirs["format"] != PART_FORMAT:
            raise MalformedFrame("expected the peer's receipt settings")
        self._check_agreement(mine, theirs)

    # --- at the end of the run, while the channel is open ---

    def sign_with_peer(
        self,
        channel: Channel,
        rows: int,
        outputs: Iterable[str],
        saw: Iterable[tuple[str, str]],
    ) -> entries.Entry:
        """Exchange parts and signatures with the peer; returns the entry both signed."""
        mine = self._part(rows, outputs, saw)
        theirs = _parse_part(channel.exchange(json.dumps(mine).encode()))
        body = self._merge(mine, theirs)
        signature = entries.signature_for(entries.DATA_USE_RECEIPT, body, self.key)
        their_signature = channel.exchange(signature.encode())
        peer = theirs["party"]
        try:
            entry = entries.with_signatures(
                entries.DATA_USE_RECEIPT,
                body,
                {self.party_id: signature, peer: their_signature.decode("ascii")},
            )
            entry.check_signatures()
        except (UnicodeDecodeError, TranslogError) as exc:
            raise ReceiptError(f"the peer's signature on the run's receipt is refused: {exc}") from exc
        return entry

    def _settings(self) -> dict[str, Any]:
        """What both parties' parts must agree on (checked at the start, merged at the end)."""
        return {
            "format": PART_FORMAT,
            "kind": self.kind,
            "party": self.party_id,
            "identity_key": canonical.public_key_text(self.key.public_key()),
            "purpose": self.purpose,
            "code": code_identity(),
        }

    def _part(self, rows: int, outputs: Iterable[str], saw: Iterable[tuple[str, str]]) -> dict[str, Any]:
        return {
            **self._settings(),
            "input": {"rows": rows, "commitment": entries.input_commitment(self.salt, self.input_sha256)},
            "outputs": sorted(set(outputs)),
            "saw": [[_label(item), cls] for item, cls in saw][: entries.MAX_ITEMS],
            "started_at": self.started_at_ms,
            "ended_at": _now_ms(),
            "nonce": secrets.token_hex(16),
        }

    def _check_agreement(self, mine: dict[str, Any], theirs: dict[str, Any]) -> None:
        what_differs = {"kind": "kind of run", "purpose": "purpose (--purpose)", "code": "blindgate code"}
        for field, what in what_differs.items():
            if theirs[field] != mine[field]:
                raise ReceiptError(
                    f"the peer's receipt names another {what}: both parties must give the same"
                )
        if theirs["party"] == self.party_id:
            raise ReceiptError(f"both parties call themselves {self.party_id!r}: give one --party-id")
        if not entries.is_party_id(theirs["party"]):
            raise ReceiptError("the peer's party id is not one a receipt can carry")
        try:
            peer_key = canonical.load_public_key(theirs["identity_key"], "the peer's identity key")
        except TranslogError as exc:
            raise ReceiptError(str(exc)) from exc
        if not any(peer_key.public_bytes_raw() == k.public_bytes_raw() for k in self.peer_keys):
            raise ReceiptError(
                "the peer signs receipts with a key that is neither its pinned certificate's "
                "nor the one given with --peer-identity-key"
            )

    def _merge(self, mine: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
        self._check_agreement(mine, theirs)
        parts = sorted((mine, theirs), key=lambda part: str(part["party"]))
        outputs: dict[str, list[str]] = {}
        for part in parts:
            for name in part["outputs"]:
                outputs.setdefault(name, []).append(part["party"])
        try:
            return entries.receipt_body(
                run_id=f"{self.kind}-"
                + hashlib.sha256("".join(p["nonce"] for p in parts).encode()).hexdigest()[:24],
                kind=self.kind,
                purpose=self.purpose,
                parties={
                    part["party"]: canonical.load_public_key(part["identity_key"], "identity key")
                    for part in parts
                },
                code_version=mine["code"]["version"],
                code_digest=mine["code"]["digest"],
                inputs={
                    part["party"]: (part["input"]["rows"], part["input"]["commitment"]) for part in parts
                },
                outputs=outputs,
                saw={part["party"]: [(item, cls) for item, cls in part["saw"]] for part in parts},
                started_at_ms=min(p["started_at"] for p in parts),
                ended_at_ms=max(p["ended_at"] for p in parts),
            )
        except (TranslogError, TypeError, ValueError) as exc:
            raise ReceiptError(f"the peer's part of the receipt is malformed: {exc}") from exc

    # --- after the run ---

    def write(self, entry: entries.Entry, path: Path) -> tuple[Path, int | None]:
        """The opening, then the receipt file (appended to the log first, given one); returns
        the receipt's path and its index in the log (None without a log)."""
        opening = {
            "format": "blindgate-receipt-opening/1",
            "run_id": entry.body["run_id"],
            "party": self.party_id,
            "salt": self.salt.hex(),
            "input_sha256": self.input_sha256.hex(),
        }
        write_atomically(opening_path(path), json.dumps(opening, indent=1) + "\n", permissions=0o600)
        write_atomically(path, json.dumps(unlogged_receipt_file(entry), indent=1) + "\n")
        if not self.log_url:
            return path, None
        from blindgate.translog.http import HttpLogClient

        try:
            log = HttpLogClient(self.log_url)
            index, head = log.add(entry)
            proven_at, proof = log.inclusion(entry.leaf_hash(), head.size)
        except TranslogError as exc:
            raise LogAppendFailed(
                f"{exc}; the signed receipt is in {path.name}: add it with "
                f"`blindgate log append --log URL {path.name}`"
            ) from exc
        if proven_at != index:
            raise LogAppendFailed("the log proved the receipt at another index than it appended it")
        write_atomically(path, json.dumps(receipt_file(entry, index, head, proof), indent=1) + "\n")
        return path, index


def opening_path(receipt: Path) -> Path:
    return receipt.with_name(receipt.stem + ".opening.json")


def _parse_part(frame: bytes) -> dict[str, Any]:
    if len(frame) > MAX_PART_BYTES:
        raise ReceiptError("the peer's part of the receipt is too large")
    try:
        part = json.loads(frame)
        shape_ok = isinstance(part, dict) and part.get("format") == PART_FORMAT
        fields = {"kind", "party", "identity_key", "purpose", "code", "input", "outputs", "saw"}
        shape_ok = shape_ok and fields | {"started_at", "ended_at", "nonce"} <= set(part)
        shape_ok = shape_ok and isinstance(part["input"], dict) and isinstance(part["saw"], list)
        shape_ok = shape_ok and isinstance(part["outputs"], list) and isinstance(part["nonce"], str)
        shape_ok = shape_ok and all(isinstance(s, list) and len(s) == 2 for s in part["saw"])
        shape_ok = (
            shape_ok and {"rows", "commitment"} <= set(part["input"]) and isinstance(part["party"], str)
        )
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedFrame("expected the peer's part of the run's receipt") from exc
    if not shape_ok:
        raise MalformedFrame("expected the peer's part of the run's receipt")
    return dict(part)


@cache
def code_identity() -> dict[str, str]:
    """This blindgate's version and a digest of its source files (path and bytes, sorted)."""
    root = Path(blindgate.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix().encode()
        digest.update(len(relative).to_bytes(4, "big") + relative)
        data = path.read_bytes()
        digest.update(len(data).to_bytes(8, "big") + data)
    return {"version": f"blindgate {blindgate.__version__}", "digest": "sha256:" + digest.hexdigest()}


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def _label(text: str) -> str:
    return text if len(text) <= entries.MAX_LABEL else text[: entries.MAX_LABEL - 3] + "..."


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _certificate_name(cert_pem: bytes) -> str:
    from cryptography.x509.oid import NameOID

    names = x509.load_pem_x509_certificate(cert_pem).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def _certificate_key(cert_pem: bytes) -> ed25519.Ed25519PublicKey:
    key = x509.load_pem_x509_certificate(cert_pem).public_key()
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise ReceiptSettingsError("the peer's certificate is not a blindgate PET identity (Ed25519)")
    return key


def _tls_key(identity: Identity) -> ed25519.Ed25519PrivateKey:
    key = serialization.load_pem_private_key(identity.key_pem, None)
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise ReceiptSettingsError("this identity's key is not Ed25519: give --identity-key")
    return key


def _private_key(path: Path) -> ed25519.Ed25519PrivateKey:
    from blindgate.translog.heads import load_private_key

    try:
        return load_private_key(path)
    except TranslogError as exc:
        raise ReceiptSettingsError(f"--identity-key: {exc}") from exc


def _public_key(path: Path) -> ed25519.Ed25519PublicKey:
    from blindgate.translog.heads import load_public_key

    if b"BEGIN CERTIFICATE" in path.read_bytes():
        return _certificate_key(path.read_bytes())
    try:
        return load_public_key(path)
    except TranslogError as exc:
        raise ReceiptSettingsError(f"--peer-identity-key: {exc}") from exc
