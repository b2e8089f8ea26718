"""A party's keys on disk, with versions, and the public bundle it publishes.

Layout (private files 0600, folders 0700; the party file is written last, so a store
that has one is complete)::

    <directory>/party.json          {"format", "party_id", "suite"}
    <directory>/<kind>/v<N>.json     one key version: {"kind", "version", "suite"?, "private", "created"}

Kinds: ``seal`` (HPKE key pair; the envelope's kid is the party id), ``pseudonym`` (32
random bytes, the wallet's PRF key), ``rsa`` (RSA-2048, the AMS ``RSA256`` scheme at the
SDK boundary) and ``ed25519`` (agent <-> gateway signatures). `rotate` writes version N+1
and makes it current; every older version stays on disk and stays usable, so what was
sealed to version 1 still opens after a rotation, and a signature naming ``keyVersion=1``
still verifies against the old public key in the bundle.

Sealing keys expire (`retire_seal_keys`): the current one is rotated once it is older than
the rotation interval, and a superseded version is destroyed — its file overwritten and
removed — once the retention window has passed since it was superseded: every envelope it
could open was sealed before that, and is past the window in which anyone may open it. Old
ciphertext then becomes unopenable even by its holder (forward secrecy for stored data).
The current version is never destroyed, nor one named in ``keep``; a running agent runs this
on its schedule (`blindgate.agent.rotation`). (Overwriting a file cannot reach copies a file system
or a backup keeps elsewhere: deployments keep key stores out of backups.)

Versions are written with a no-clobber link, so two processes rotating at once cannot
overwrite each other; a running process that meets a newer seal version than it has
loaded reads it from disk once.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from blindgate.crypto import pseudonyms
from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.crypto.errors import InvalidInput, KeyStoreError, UnknownKey
from blindgate.crypto.sealing import (
    DEFAULT_SUITE,
    OpeningKey,
    RecipientKey,
    check_kid,
    check_suite,
    generate_opening_key,
)
from blindgate.crypto.signatures import (
    ED25519,
    RSA256,
    SigningKey,
    VerifyingKey,
    load_rsa_public_key,
    rsa_public_key_for_sdk,
)
from blindgate.fileio import write_atomically

KeyKind = Literal["seal", "pseudonym", "rsa", "ed25519"]
KINDS: Final[tuple[str, ...]] = get_args(KeyKind)
SIGNING_KINDS: Final = ("rsa", "ed25519")
STORE_FORMAT: Final = "blindgate-keystore/1"
BUNDLE_FORMAT: Final = "blindgate-public-keys/1"
RSA_BITS: Final = 2048
_VERSION_FILE: Final = re.compile(r"v([1-9][0-9]{0,8})\.json")


class KeyStore:
    """One party's keys. Load with ``KeyStore(directory)``, make with ``KeyStore.create``.

    Keys are parsed once, at load, and kept in memory: the hot paths (opening, signing,
    pseudonyms) never touch the disk.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        party = _read_json(self.directory / "party.json")
        if party.get("format") != STORE_FORMAT or not isinstance(party.get("party_id"), str):
            raise KeyStoreError("key store's party.json is not a blindgate key store")
        self.party_id: str = check_kid(party["party_id"])
        held = party.get("kinds", list(KINDS))
        if not isinstance(held, list) or not set(SIGNING_KINDS) <= set(held) <= set(KINDS):
            raise KeyStoreError("key store's party.json lists unknown kinds or lacks signing keys")
        self.kinds: tuple[str, ...] = tuple(kind for kind in KINDS if kind in held)
        self._lock = threading.Lock()
        self._keys: dict[str, dict[int, Any]] = {kind: {} for kind in KINDS}
        for kind in self.kinds:
            for path in (self.directory / kind).glob("v*.json"):
                match = _VERSION_FILE.fullmatch(path.name)
                if match:
                    self._keys[kind][int(match[1])] = self._load(kind, int(match[1]))
            if not self._keys[kind]:
                raise KeyStoreError(f"key store has no {kind} key")

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        party_id: str,
        suite: str = DEFAULT_SUITE,
        *,
        signing_only: bool = False,
    ) -> KeyStore:
        """Make a new store with version 1 of every kind in a new or empty directory.

        ``signing_only`` makes a store with RSA and Ed25519 keys alone: the gateway's, which
        must hold no key that opens sealed data or computes pseudonyms. Refuses to touch
        an existing store or a non-empty directory.
        """
        check_kid(party_id)
        check_suite(suite)
        kinds = SIGNING_KINDS if signing_only else KINDS
        root = Path(directory)
        if (root / "party.json").exists():
            raise KeyStoreError("a key store already exists there")
        if root.is_dir() and any(root.iterdir()):
            raise KeyStoreError("key store directory is not empty (a half-made store? remove it)")
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for kind in kinds:
            _write_version(root, kind, 1, _generate(kind, party_id, 1, suite))
        party = {"format": STORE_FORMAT, "party_id": party_id, "suite": suite, "kinds": list(kinds)}
        _write_new(root / "party.json", json.dumps(party, indent=2) + "\n", mode=0o644)
        return cls(root)

    # --- versions and rotation ---

    def versions(self, kind: KeyKind) -> list[int]:
        return sorted(self._held(kind))

    def current_version(self, kind: KeyKind) -> int:
        return max(self._held(kind))

    def rotate(self, kind: KeyKind, suite: str | None = None, now: datetime.datetime | None = None) -> int:
        """Write version N+1 of ``kind`` and make it current; returns the new version.

        ``suite`` (seal only) switches the sealing suite from this version on; ``now`` is the
        creation time recorded (default: the clock's), which `retire_seal_keys` measures from.
        """
        if suite is not None and kind != "seal":
            raise InvalidInput("only seal keys have a suite")
        with self._lock:
            version = max(self._held(kind)) + 1
            if kind == "seal":  # other kinds have no suite; the seal suite carries over unless named
                suite = suite or self._keys["seal"][version - 1].suite
            record = _generate(kind, self.party_id, version, suite or DEFAULT_SUITE, now)
            _write_version(self.directory, kind, version, record)
            self._keys[kind][version] = self._load(kind, version)
        return version

    def retire_seal_keys(
        self,
        rotate_after: datetime.timedelta,
        retention: datetime.timedelta,
        now: datetime.datetime,
        keep: Collection[int] = (),
    ) -> tuple[int | None, list[int]]:
        """Rotate the sealing key if the current one is older than ``rotate_after``, and destroy
        every superseded version whose successor is older than ``retention``, except those in
        ``keep`` (the version partners are still told to seal to): (the new version or None,
        the versions destroyed)."""
        created = {version: self._created("seal", version) for version in self.versions("seal")}
        rotated = None
        if now - created[max(created)] >= rotate_after:
            rotated = self.rotate("seal", now=now)
            created[rotated] = now  # superseding the previous one from now on
        destroyed = []
        for version in sorted(created):
            successor = created.get(version + 1)
            if version in keep:
                continue
            if successor is not None and now - successor >= retention:
                self._destroy("seal", version)
                destroyed.append(version)
        return rotated, destroyed

    def _created(self, kind: str, version: int) -> datetime.datetime:
        stamp = _read_json(self.directory / kind / f"v{version}.json").get("created")
        try:
            return datetime.datetime.fromisoformat(str(stamp))
        except ValueError:
            raise KeyStoreError(f"{kind} key file v{version} has no creation time") from None

    def _destroy(self, kind: str, version: int) -> None:
        path = self.directory / kind / f"v{version}.json"
        with self._lock:
            size = path.stat().st_size
            with open(path, "r+b") as handle:  # overwrite in place before removing the name
                handle.write(b"\0" * size)
                handle.flush()
                os.fsync(handle.fileno())
            path.unlink()
            self._keys[kind].pop(version, None)

    # --- sealing ---

    def recipient_key(self) -> RecipientKey:
        """The current public sealing key: what senders seal to."""
        opening: OpeningKey = self._keys["seal"][self.current_version("seal")]
        return opening.recipient

    def recipient_keys(self) -> list[RecipientKey]:
        """The public half of every sealing key version still held, oldest first: what a key
        bundle lists, so that peers sealing to a superseded (not yet destroyed) version still can."""
        held: dict[int, OpeningKey] = self._held("seal")
        return [held[version].recipient for version in sorted(held)]

    def opening_key(self, kid: str, version: int) -> OpeningKey:
        """The private key of (kid, version); raises `UnknownKey` when this party holds none."""
        if kid != self.party_id or "seal" not in self.kinds:
            raise UnknownKey("sealed to another party's key")
        key = self._keys["seal"].get(version)
        if key is None and version > self.current_version("seal"):
            key = self._reload_seal(version)  # another process may have rotated
        if key is None:
            raise UnknownKey("sealed to a key version this party does not hold")
        assert isinstance(key, OpeningKey)
        return key

    # --- pseudonyms and signing ---

    def pseudonym_key(self, version: int | None = None) -> bytes:
        key: bytes = self._get("pseudonym", version)
        return key

    def pseudonym(self, purpose: str, customer_id: str) -> str:
        """The pseudonym of one of this wallet's customers under the current pseudonym key."""
        return pseudonyms.pseudonym(self.pseudonym_key(), purpose, customer_id)

    def rsa_key(self, version: int | None = None) -> rsa.RSAPrivateKey:
        key: rsa.RSAPrivateKey = self._get("rsa", version)
        return key

    def ed25519_key(self, version: int | None = None) -> ed25519.Ed25519PrivateKey:
        key: ed25519.Ed25519PrivateKey = self._get("ed25519", version)
        return key

    def signing_key(self, algorithm: str, version: int | None = None) -> tuple[SigningKey, int]:
        """(key, version) for ``RSA256`` or ``ED25519``: the current version unless one is named."""
        kind: KeyKind = "rsa" if algorithm == RSA256 else "ed25519"
        if algorithm not in (RSA256, ED25519):
            raise InvalidInput("algorithm is RSA256 or ED25519")
        chosen = self.current_version(kind) if version is None else version
        return self._get(kind, chosen), chosen

    # --- what the party publishes ---

    def public_bundle(self) -> dict[str, Any]:
        """JSON-able public keys: the current sealing key (if any) and every signing key version."""
        rsa_keys = {str(v): rsa_public_key_for_sdk(k.public_key()) for v, k in self._keys["rsa"].items()}
        ed_keys = {
            str(v): b64url_encode(k.public_key().public_bytes_raw()) for v, k in self._keys["ed25519"].items()
        }
        bundle: dict[str, Any] = {"format": BUNDLE_FORMAT, "party_id": self.party_id}
        if "seal" in self.kinds:
            bundle["seal"] = self.recipient_key().to_json()
        bundle["rsa"] = {"current": self.current_version("rsa"), "versions": rsa_keys}
        bundle["ed25519"] = {"current": self.current_version("ed25519"), "versions": ed_keys}
        return bundle

    # --- internals ---

    def _held(self, kind: str) -> dict[int, Any]:
        if _check_kind(kind) not in self.kinds:
            raise UnknownKey(f"this party holds no {kind} keys")
        keys: dict[int, Any] = self._keys[kind]
        return keys

    def _get(self, kind: KeyKind, version: int | None) -> Any:
        keys = self._held(kind)
        chosen = max(keys) if version is None else version
        if chosen not in keys:
            raise UnknownKey(f"no {kind} key of that version")
        return keys[chosen]

    def _reload_seal(self, version: int) -> OpeningKey | None:
        if not (self.directory / "seal" / f"v{version}.json").exists():
            return None
        with self._lock:
            key = self._load("seal", version)
            self._keys["seal"][version] = key
        assert isinstance(key, OpeningKey)
        return key

    def _load(self, kind: str, version: int) -> Any:
        record = _read_json(self.directory / kind / f"v{version}.json")
        if record.get("kind") != kind or record.get("version") != version:
            raise KeyStoreError(f"{kind} key file v{version} does not match its name")
        try:
            private = b64url_decode(record["private"])
            if kind == "seal":
                return OpeningKey.from_private_bytes(self.party_id, version, record["suite"], private)
            if kind == "pseudonym":
                if len(private) != pseudonyms.KEY_BYTES:
                    raise InvalidInput("pseudonym key length")
                return private
            if kind == "rsa":
                key = serialization.load_der_private_key(private, password=None)
                if not isinstance(key, rsa.RSAPrivateKey):
                    raise InvalidInput("not RSA")
                return key
            return ed25519.Ed25519PrivateKey.from_private_bytes(private)
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyStoreError(f"{kind} key file v{version} does not parse") from exc


@dataclass(frozen=True)
class PublicBundle:
    """A party's published keys, parsed: what the network file carries for each partner.

    ``sealing_key`` is None for a signing-only party (the gateway); `recipient_key`
    raises `UnknownKey` there, so nothing can be sealed to it by mistake.
    """

    party_id: str
    sealing_key: RecipientKey | None
    rsa_keys: dict[int, rsa.RSAPublicKey]
    ed25519_keys: dict[int, ed25519.Ed25519PublicKey]

    @property
    def recipient_key(self) -> RecipientKey:
        """The party's current public sealing key; raises `UnknownKey` if it has none."""
        if self.sealing_key is None:
            raise UnknownKey("this party publishes no sealing key")
        return self.sealing_key

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PublicBundle:
        """Parse `KeyStore.public_bundle`'s shape; raises `InvalidInput` on anything else."""
        try:
            if data["format"] != BUNDLE_FORMAT:
                raise InvalidInput("not a blindgate public key bundle")
            party_id = check_kid(data["party_id"])
            recipient = RecipientKey.from_json(data["seal"]) if "seal" in data else None
            rsa_keys = {_version(v): load_rsa_public_key(k) for v, k in data["rsa"]["versions"].items()}
            ed_keys = {
                _version(v): ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(k))
                for v, k in data["ed25519"]["versions"].items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput("public key bundle is incomplete") from exc
        if recipient is not None and recipient.kid != party_id:
            raise InvalidInput("public key bundle's sealing key belongs to another party")
        return cls(party_id, recipient, rsa_keys, ed_keys)

    def verifying_key(self, algorithm: str, version: int) -> VerifyingKey:
        """The public key for a ``Signature`` header's algorithm and keyVersion; raises `UnknownKey`."""
        keys: dict[int, Any] = self.rsa_keys if algorithm == RSA256 else self.ed25519_keys
        if algorithm not in (RSA256, ED25519) or version not in keys:
            raise UnknownKey("no public key of that algorithm and version")
        key: VerifyingKey = keys[version]
        return key


def _check_kind(kind: str) -> KeyKind:
    if kind not in KINDS:
        raise InvalidInput(f"key kind is one of {', '.join(KINDS)}")
    return kind  # type: ignore[return-value]


def _version(text: str) -> int:
    if not (text.isascii() and text.isdigit() and int(text) >= 1):
        raise InvalidInput("a key version is a positive integer")
    return int(text)


def _generate(
    kind: str, party_id: str, version: int, suite: str, now: datetime.datetime | None = None
) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": kind, "version": version}
    if kind == "seal":
        record["suite"] = suite
        private = generate_opening_key(party_id, version, suite).private_bytes
    elif kind == "pseudonym":
        private = secrets.token_bytes(pseudonyms.KEY_BYTES)
    elif kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS).private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    else:
        private = ed25519.Ed25519PrivateKey.generate().private_bytes_raw()
    record["private"] = b64url_encode(private)
    record["created"] = (now or datetime.datetime.now(datetime.UTC)).isoformat(timespec="seconds")
    return record


def _write_version(root: Path, kind: str, version: int, record: dict[str, Any]) -> None:
    folder = root / kind
    folder.mkdir(mode=0o700, exist_ok=True)
    _write_new(folder / f"v{version}.json", json.dumps(record) + "\n", mode=0o600)


def _write_new(path: Path, text: str, mode: int) -> None:
    """Write a file that must not exist yet, whole or not at all (no writer overwrites another's)."""
    try:
        write_atomically(path, text, exclusive=True, permissions=mode)
    except FileExistsError as exc:
        raise KeyStoreError(f"{path.name} already exists (another rotation won)") from exc


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KeyStoreError(f"key store file {path.name} is missing") from exc
    except (OSError, ValueError) as exc:
        raise KeyStoreError(f"key store file {path.name} is unreadable") from exc
    if not isinstance(data, dict):
        raise KeyStoreError(f"key store file {path.name} is not a JSON object")
    return data
