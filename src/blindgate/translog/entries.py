"""The log's entries: typed, canonical, signed by the parties they speak for.

An entry is the canonical JSON (`canonical`) of::

    {"format": "blindgate-log-entry/1", "type": T, "body": {...}, "signatures": {party: sig}}

and its leaf is those bytes (RFC 9162 leaf hash ``SHA-256(0x00 || bytes)``). Every body
names the identity key of each party that signs it, and each signature is Ed25519 by that
key over ``"blindgate/translog/entry/<T>/v1\\n" || canonical({"type": T, "body": body})``.
So an entry verifies on its own; whether an identity key really is that party's is the
reader's question (a pinned key, the first bundle it accepted, or the partner's own
monitor: see `verifier` and docs/transparency.md).

Types:

- ``key_bundle`` — a partner's sealing public keys (suite, version), its signing public
  keys (ED25519 / RSA256, version), the versions it revokes, and a validity window;
  signed by the partner's long-term identity key. ``sequence`` counts the partner's
  bundles; a rotation or a revocation is the next bundle, and the newest one is in force.
- ``field_policy`` — the version and SHA-256 digest of a partner's field policy.
- ``network_file`` — the version and SHA-256 digest of a network file, by the operator.
- ``data_use_receipt`` — one PSI, training or prediction run: purpose, the parties, the
  code's version and digest, per-party input commitments (row count and a salted digest
  whose salt the party keeps), which output went to whom, what each party saw (the
  toolkit's classes), start and end; signed by every party it names.

What an entry may hold: ids, public keys, versions, digests, counts, times and short
labels. Never a personal value: input commitments are salted digests, never plain hashes
of rows; strings are short and length-bounded here; the gateway's privacy scan reads the
log like every other byte the operator writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import SUITES
from blindgate.translog import canonical, merkle
from blindgate.translog.errors import MalformedEntry, SignatureRefused

ENTRY_FORMAT: Final = "blindgate-log-entry/1"
MAX_ENTRY_BYTES: Final = 64 * 1024
KEY_BUNDLE: Final = "key_bundle"
FIELD_POLICY: Final = "field_policy"
NETWORK_FILE: Final = "network_file"
DATA_USE_RECEIPT: Final = "data_use_receipt"
TYPES: Final = (KEY_BUNDLE, FIELD_POLICY, NETWORK_FILE, DATA_USE_RECEIPT)
SIGNING_ALGORITHMS: Final = ("ED25519", "RSA256")
KEY_KINDS: Final = ("seal", *SIGNING_ALGORITHMS)
RUN_KINDS: Final = ("psi", "train", "predict")
SAW_CLASSES: Final = ("personal data", "pseudonymous data", "ciphertext", "secret share", "aggregate")
_PARTY_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DIGEST: Final = re.compile(r"sha256:[0-9a-f]{64}")
MAX_LABEL: Final = 200
MAX_SEALING_KEYS: Final = 8  # a bundle lists the newest ones a partner holds
MAX_ITEMS: Final = 64


@dataclass(frozen=True)
class Entry:
    """One log entry. Build with the functions below; read with `Entry.parse`."""

    type: str
    body: dict[str, Any]
    signatures: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"format": ENTRY_FORMAT, "type": self.type, "body": self.body, "signatures": self.signatures}

    def data(self) -> bytes:
        return canonical.encode(self.to_json())

    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.data())

    @classmethod
    def parse(cls, data: bytes) -> Entry:
        """Parse and check an entry's shape (not its signatures: see `check_signatures`)."""
        value = canonical.parse(data, MAX_ENTRY_BYTES)
        return cls.from_json(value)

    @classmethod
    def from_json(cls, value: Any) -> Entry:
        if not isinstance(value, dict) or set(value) != {"format", "type", "body", "signatures"}:
            raise MalformedEntry("an entry has exactly format, type, body and signatures")
        if value["format"] != ENTRY_FORMAT or value["type"] not in TYPES:
            raise MalformedEntry("not a blindgate log entry of a known type")
        body, signatures = value["body"], value["signatures"]
        if not isinstance(body, dict) or not isinstance(signatures, dict):
            raise MalformedEntry("an entry's body and signatures are objects")
        for party, signature in signatures.items():
            _party_id(party, "signer")
            if not isinstance(signature, str) or len(signature) > 100:
                raise MalformedEntry("a signature is base64url text")
        _BODY_CHECKS[value["type"]](body)
        entry = cls(value["type"], body, signatures)
        if len(entry.data()) > MAX_ENTRY_BYTES:
            raise MalformedEntry(f"entry is over {MAX_ENTRY_BYTES} bytes")
        return entry

    # --- who it speaks for ---

    def signers(self) -> dict[str, ed25519.Ed25519PublicKey]:
        """Each party that must sign this entry, with the identity key the body names for it."""
        if self.type == DATA_USE_RECEIPT:
            return {
                party["party"]: canonical.load_public_key(party["identity_key"], "identity key")
                for party in self.body["parties"]
            }
        owner = self.body["partner"] if self.type != NETWORK_FILE else self.body["operator"]
        return {owner: canonical.load_public_key(self.body["identity_key"], "identity key")}

    def parties(self) -> list[str]:
        """The parties this entry is about (the log indexes it under each)."""
        return sorted(self.signers())

    def check_signatures(
        self, identity_of: Callable[[str], ed25519.Ed25519PublicKey | None] | None = None
    ) -> None:
        """Every named party's signature verifies under the identity key the body names.

        ``identity_of(party)`` (optional) returns the key the reader knows for a party (a
        pinned key, the first it accepted); a body naming another key is refused.
        """
        if set(self.signatures) - set(self.signers()):
            raise SignatureRefused(f"{self.type} carries a signature by a party it does not name")
        message = {"type": self.type, "body": self.body}
        for party, key in self.signers().items():
            known = identity_of(party) if identity_of else None
            if known is not None and known.public_bytes_raw() != key.public_bytes_raw():
                raise SignatureRefused(f"{self.type} for {party} names an identity key that is not {party}'s")
            signature = self.signatures.get(party)
            if signature is None:
                raise SignatureRefused(f"{self.type} lacks the signature of {party}")
            canonical.verify(key, f"entry/{self.type}", message, signature, f"{self.type} signed for {party}")


def sign_entry(
    entry_type: str, body: dict[str, Any], signers: Mapping[str, ed25519.Ed25519PrivateKey]
) -> Entry:
    """Check ``body`` and sign it with each party's identity key; returns the entry."""
    if entry_type not in TYPES:
        raise MalformedEntry("unknown entry type")
    _BODY_CHECKS[entry_type](body)
    message = {"type": entry_type, "body": body}
    signatures = {
        party: canonical.sign(key, f"entry/{entry_type}", message) for party, key in signers.items()
    }
    return Entry.from_json(
        {"format": ENTRY_FORMAT, "type": entry_type, "body": body, "signatures": signatures}
    )


def signature_for(entry_type: str, body: dict[str, Any], key: ed25519.Ed25519PrivateKey) -> str:
    """One party's signature over a body (each party of a receipt signs on its own side)."""
    _BODY_CHECKS[entry_type](body)
    return canonical.sign(key, f"entry/{entry_type}", {"type": entry_type, "body": body})


def with_signatures(entry_type: str, body: dict[str, Any], signatures: Mapping[str, str]) -> Entry:
    """Assemble an entry from signatures the parties made apart (`signature_for`)."""
    return Entry.from_json(
        {"format": ENTRY_FORMAT, "type": entry_type, "body": body, "signatures": dict(signatures)}
    )


# --- builders ---


def key_bundle(
    store: KeyStore,
    identity: ed25519.Ed25519PrivateKey,
    *,
    sequence: int,
    valid_from_ms: int,
    valid_until_ms: int | None = None,
    revoked: Iterable[tuple[str, int]] = (),
) -> Entry:
    """A partner's key bundle from its key store: every sealing key version it still holds and
    has not revoked (a superseded one stays usable by peers until it is destroyed), every
    signing key."""
    public = store.public_bundle()
    revoked = list(revoked)
    sealing = [
        {"suite": key.suite, "version": key.version, "public_key": b64url_encode(key.public_bytes)}
        for key in (store.recipient_keys() if "seal" in public else [])
        if ("seal", key.version) not in revoked
    ][-MAX_SEALING_KEYS:]
    signing = [
        {"algorithm": "ED25519", "version": int(version), "public_key": key}
        for version, key in public["ed25519"]["versions"].items()
    ]
    signing += [
        {"algorithm": "RSA256", "version": int(version), "public_key": _b64_to_b64url(key)}
        for version, key in public["rsa"]["versions"].items()
    ]
    body = {
        "partner": store.party_id,
        "identity_key": canonical.public_key_text(identity.public_key()),
        "sequence": sequence,
        "sealing_keys": sealing,
        "signing_keys": sorted(signing, key=lambda k: (k["algorithm"], k["version"])),
        "revoked": [{"kind": kind, "version": version} for kind, version in revoked],
        "valid_from": valid_from_ms,
        "valid_until": valid_until_ms,
    }
    return sign_entry(KEY_BUNDLE, body, {store.party_id: identity})


def field_policy(
    partner: str, identity: ed25519.Ed25519PrivateKey, *, version: int, policy: bytes, effective_from_ms: int
) -> Entry:
    body = {
        "partner": partner,
        "identity_key": canonical.public_key_text(identity.public_key()),
        "version": version,
        "digest": canonical.sha256_digest(policy),
        "effective_from": effective_from_ms,
    }
    return sign_entry(FIELD_POLICY, body, {partner: identity})


def network_file(
    operator: str, identity: ed25519.Ed25519PrivateKey, *, version: int, content: bytes, published_at_ms: int
) -> Entry:
    body = {
        "operator": operator,
        "identity_key": canonical.public_key_text(identity.public_key()),
        "version": version,
        "digest": canonical.sha256_digest(content),
        "published_at": published_at_ms,
    }
    return sign_entry(NETWORK_FILE, body, {operator: identity})


def input_commitment(salt: bytes, input_digest: bytes) -> str:
    """A salted digest of a party's input: ``sha256(salt || digest)``; the party keeps the salt.

    Without the salt (at least 16 random bytes) nobody can test a guess of the input
    against the commitment; with it, the party can open the commitment to an auditor.
    """
    if len(salt) < 16:
        raise ValueError("a commitment salt has at least 16 random bytes")
    return "sha256:" + hashlib.sha256(salt + input_digest).hexdigest()


def receipt_body(
    *,
    run_id: str,
    kind: str,
    purpose: str,
    parties: Mapping[str, ed25519.Ed25519PublicKey],
    code_version: str,
    code_digest: str,
    inputs: Mapping[str, tuple[int, str]],
    outputs: Mapping[str, Iterable[str]],
    saw: Mapping[str, Iterable[tuple[str, str]]],
    started_at_ms: int,
    ended_at_ms: int,
) -> dict[str, Any]:
    """A data-use receipt's body. ``inputs``: party -> (rows, `input_commitment`);
    ``outputs``: output name -> parties it went to; ``saw``: party -> (item, class) pairs."""
    body = {
        "run_id": run_id,
        "kind": kind,
        "purpose": purpose,
        "parties": [
            {"party": party, "identity_key": canonical.public_key_text(key)}
            for party, key in sorted(parties.items())
        ],
        "code": {"version": code_version, "digest": code_digest},
        "inputs": [
            {"party": party, "rows": rows, "commitment": commitment}
            for party, (rows, commitment) in sorted(inputs.items())
        ],
        "outputs": [{"name": name, "to": sorted(to)} for name, to in sorted(outputs.items())],
        "saw": {party: [{"item": item, "class": cls} for item, cls in items] for party, items in saw.items()},
        "started_at": started_at_ms,
        "ended_at": ended_at_ms,
    }
    _check_receipt(body)
    return body


# --- reading a key bundle ---


@dataclass(frozen=True)
class PublishedKeys:
    """What a key bundle says is in force: (suite, version) -> key, (algorithm, version) -> key."""

    partner: str
    sequence: int
    sealing: dict[tuple[str, int], bytes]
    signing: dict[tuple[str, int], bytes]
    revoked: frozenset[tuple[str, int]]
    valid_from: int
    valid_until: int | None

    @classmethod
    def of(cls, entry: Entry) -> PublishedKeys:
        if entry.type != KEY_BUNDLE:
            raise MalformedEntry("not a key bundle")
        body = entry.body
        return cls(
            partner=body["partner"],
            sequence=body["sequence"],
            sealing={
                (k["suite"], k["version"]): b64url_decode(k["public_key"]) for k in body["sealing_keys"]
            },
            signing={
                (k["algorithm"], k["version"]): b64url_decode(k["public_key"]) for k in body["signing_keys"]
            },
            revoked=frozenset((r["kind"], r["version"]) for r in body["revoked"]),
            valid_from=body["valid_from"],
            valid_until=body["valid_until"],
        )


# --- shape checks (no signature is checked here) ---


def is_party_id(value: Any) -> bool:
    return isinstance(value, str) and _PARTY_ID.fullmatch(value) is not None


def _party_id(value: Any, what: str) -> str:
    if not (isinstance(value, str) and _PARTY_ID.fullmatch(value)):
        raise MalformedEntry(f"{what} is not a party id")
    return value


def _fields(body: Any, names: set[str], what: str) -> None:
    if not isinstance(body, dict) or set(body) != names:
        raise MalformedEntry(f"{what} has exactly the fields {', '.join(sorted(names))}")


def _int(value: Any, what: str, low: int = 0) -> int:
    if type(value) is not int or not low <= value <= canonical.INT_RANGE[1]:
        raise MalformedEntry(f"{what} is an integer of at least {low}")
    return value


def _label(value: Any, what: str) -> str:
    if not (isinstance(value, str) and 0 < len(value) <= MAX_LABEL and value.isprintable()):
        raise MalformedEntry(f"{what} is a short printable label")
    return value


def _list(value: Any, what: str, limit: int = MAX_ITEMS) -> list[Any]:
    if not isinstance(value, list) or len(value) > limit:
        raise MalformedEntry(f"{what} is a list of at most {limit} items")
    return value


def _key_text(value: Any, what: str) -> None:
    try:
        if not isinstance(value, str) or len(value) > 4096 or not b64url_decode(value):
            raise ValueError(what)
    except ValueError as exc:
        raise MalformedEntry(f"{what} is base64url key bytes") from exc


def _digest(value: Any, what: str) -> None:
    if not (isinstance(value, str) and _DIGEST.fullmatch(value)):
        raise MalformedEntry(f"{what} is sha256:<64 hex digits>")


def _check_key_bundle(body: Any) -> None:
    names = {"partner", "identity_key", "sequence", "sealing_keys", "signing_keys", "revoked"}
    _fields(body, names | {"valid_from", "valid_until"}, "a key bundle")
    _party_id(body["partner"], "a key bundle's partner")
    canonical.load_public_key(body["identity_key"], "a key bundle's identity key")
    _int(body["sequence"], "a key bundle's sequence", 1)
    seen: set[tuple[str, int]] = set()
    for key in _list(body["sealing_keys"], "sealing_keys", MAX_SEALING_KEYS):
        _fields(key, {"suite", "version", "public_key"}, "a sealing key")
        if key["suite"] not in SUITES:
            raise MalformedEntry("a sealing key's suite is unknown")
        seen.add((key["suite"], _int(key["version"], "a key version", 1)))
        _key_text(key["public_key"], "a sealing key")
    for key in _list(body["signing_keys"], "signing_keys"):
        _fields(key, {"algorithm", "version", "public_key"}, "a signing key")
        if key["algorithm"] not in SIGNING_ALGORITHMS:
            raise MalformedEntry("a signing key's algorithm is unknown")
        seen.add((key["algorithm"], _int(key["version"], "a key version", 1)))
        _key_text(key["public_key"], "a signing key")
    if len(seen) != len(body["sealing_keys"]) + len(body["signing_keys"]):
        raise MalformedEntry("a key bundle lists one key version twice")
    for item in _list(body["revoked"], "revoked", 1024):
        _fields(item, {"kind", "version"}, "a revocation")
        if item["kind"] not in KEY_KINDS:
            raise MalformedEntry("a revocation's kind is unknown")
        _int(item["version"], "a revoked version", 1)
    _int(body["valid_from"], "valid_from")
    if body["valid_until"] is not None and _int(body["valid_until"], "valid_until") <= body["valid_from"]:
        raise MalformedEntry("a key bundle's validity ends before it starts")


def _check_field_policy(body: Any) -> None:
    _fields(body, {"partner", "identity_key", "version", "digest", "effective_from"}, "a field policy")
    _party_id(body["partner"], "a field policy's partner")
    canonical.load_public_key(body["identity_key"], "a field policy's identity key")
    _int(body["version"], "a policy version", 1)
    _digest(body["digest"], "a policy digest")
    _int(body["effective_from"], "effective_from")


def _check_network_file(body: Any) -> None:
    _fields(body, {"operator", "identity_key", "version", "digest", "published_at"}, "a network file")
    _party_id(body["operator"], "a network file's operator")
    canonical.load_public_key(body["identity_key"], "a network file's identity key")
    _int(body["version"], "a network file version", 1)
    _digest(body["digest"], "a network file digest")
    _int(body["published_at"], "published_at")


def _check_receipt(body: Any) -> None:
    names = {"run_id", "kind", "purpose", "parties", "code", "inputs", "outputs", "saw"}
    _fields(body, names | {"started_at", "ended_at"}, "a data-use receipt")
    _label(body["run_id"], "a run id")
    if body["kind"] not in RUN_KINDS:
        raise MalformedEntry(f"a run's kind is one of {', '.join(RUN_KINDS)}")
    _label(body["purpose"], "a run's purpose")
    parties = []
    for party in _list(body["parties"], "parties", 8):
        _fields(party, {"party", "identity_key"}, "a receipt's party")
        parties.append(_party_id(party["party"], "a receipt's party"))
        canonical.load_public_key(party["identity_key"], "a party's identity key")
    if len(parties) < 2 or len(set(parties)) != len(parties):
        raise MalformedEntry("a receipt names at least two distinct parties")
    _fields(body["code"], {"version", "digest"}, "a receipt's code")
    _label(body["code"]["version"], "the code's version")
    _digest(body["code"]["digest"], "the code's digest")
    for item in _list(body["inputs"], "inputs", 8):
        _fields(item, {"party", "rows", "commitment"}, "an input commitment")
        if item["party"] not in parties:
            raise MalformedEntry("an input commitment names a party the receipt does not")
        _int(item["rows"], "an input's row count")
        _digest(item["commitment"], "an input commitment")
    for output in _list(body["outputs"], "outputs"):
        _fields(output, {"name", "to"}, "an output")
        _label(output["name"], "an output's name")
        if not set(_list(output["to"], "an output's recipients", 8)) <= set(parties):
            raise MalformedEntry("an output goes to a party the receipt does not name")
    if not isinstance(body["saw"], dict) or set(body["saw"]) != set(parties):
        raise MalformedEntry("a receipt says what each of its parties saw, and nothing else")
    for items in body["saw"].values():
        for item in _list(items, "what a party saw"):
            _fields(item, {"item", "class"}, "a seen item")
            _label(item["item"], "a seen item")
            if item["class"] not in SAW_CLASSES:
                raise MalformedEntry(f"a seen item's class is one of {', '.join(SAW_CLASSES)}")
    if _int(body["ended_at"], "ended_at") < _int(body["started_at"], "started_at"):
        raise MalformedEntry("a run ends before it starts")


_BODY_CHECKS: Final[dict[str, Callable[[Any], None]]] = {
    KEY_BUNDLE: _check_key_bundle,
    FIELD_POLICY: _check_field_policy,
    NETWORK_FILE: _check_network_file,
    DATA_USE_RECEIPT: _check_receipt,
}


def _b64_to_b64url(text: str) -> str:
    """The SDK's bare base64 RSA key as unpadded base64url (one alphabet across the bundle)."""
    try:
        return b64url_encode(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise MalformedEntry("an RSA public key is not base64") from exc
