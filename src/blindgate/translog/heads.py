"""Signed tree heads and witness cosignatures, and the Ed25519 key files they are made with.

A tree head (RFC 9162 §4.10's TreeHeadDataV2 content, in canonical JSON)::

    {"log_id": <key id of the log's key>, "size": n, "root": <b64url SHA-256>, "timestamp": <ms>}

is signed by the log's own Ed25519 key (purpose ``tree-head``), a key that signs nothing
else. A witness that has checked the head is consistent with every head it signed before
adds a cosignature: Ed25519 by the witness's key (purpose ``cosignature``) over
``{"head": <head>, "witness": <its key id>, "timestamp": <ms>}``. A head and its
cosignatures travel as one JSON object (`SignedHead.to_json`).

Key files: a private key is PKCS#8 PEM (0600, never overwritten); a public key file holds
the base64url raw key (what ``blindgate log keygen`` prints) or a PEM public key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.translog import canonical, merkle
from blindgate.translog.errors import MalformedEntry, SignatureRefused, StateError

MAX_COSIGNATURES: Final = 16


@dataclass(frozen=True)
class Cosignature:
    witness: str  # the witness key's id
    timestamp: int
    signature: str

    def to_json(self) -> dict[str, Any]:
        return {"witness": self.witness, "timestamp": self.timestamp, "signature": self.signature}

    @classmethod
    def from_json(cls, value: Any) -> Cosignature:
        if not isinstance(value, dict) or set(value) != {"witness", "timestamp", "signature"}:
            raise MalformedEntry("a cosignature has exactly witness, timestamp and signature")
        if not (isinstance(value["witness"], str) and len(value["witness"]) <= 64):
            raise MalformedEntry("a cosignature's witness is a key id")
        if type(value["timestamp"]) is not int or not isinstance(value["signature"], str):
            raise MalformedEntry("a cosignature's timestamp is an integer, its signature text")
        return cls(value["witness"], value["timestamp"], value["signature"])


@dataclass(frozen=True)
class SignedHead:
    """A tree head, the log's signature, and the witnesses' cosignatures gathered so far."""

    log_id: str
    size: int
    root: bytes
    timestamp: int
    signature: str
    cosignatures: tuple[Cosignature, ...] = field(default=())

    def body(self) -> dict[str, Any]:
        return {
            "log_id": self.log_id,
            "size": self.size,
            "root": b64url_encode(self.root),
            "timestamp": self.timestamp,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.body(),
            "signature": self.signature,
            "cosignatures": [c.to_json() for c in self.cosignatures],
        }

    @classmethod
    def from_json(cls, value: Any) -> SignedHead:
        names = {"log_id", "size", "root", "timestamp", "signature", "cosignatures"}
        if not isinstance(value, dict) or set(value) != names:
            raise MalformedEntry("a signed tree head has exactly " + ", ".join(sorted(names)))
        size, timestamp = value["size"], value["timestamp"]
        if type(size) is not int or not 0 <= size <= merkle.MAX_TREE_SIZE or type(timestamp) is not int:
            raise MalformedEntry("a tree head's size and timestamp are non-negative integers")
        try:
            root = b64url_decode(value["root"])
        except (ValueError, TypeError) as exc:
            raise MalformedEntry("a tree head's root is base64url") from exc
        if len(root) != merkle.HASH_SIZE or (size == 0 and root != merkle.EMPTY_ROOT):
            raise MalformedEntry("a tree head's root is not a SHA-256 tree hash")
        if not isinstance(value["log_id"], str) or not isinstance(value["signature"], str):
            raise MalformedEntry("a tree head's log id and signature are text")
        cosignatures = value["cosignatures"]
        if not isinstance(cosignatures, list) or len(cosignatures) > MAX_COSIGNATURES:
            raise MalformedEntry(f"a tree head carries at most {MAX_COSIGNATURES} cosignatures")
        return cls(
            value["log_id"],
            size,
            root,
            timestamp,
            value["signature"],
            tuple(Cosignature.from_json(c) for c in cosignatures),
        )

    def verify(self, log_key: ed25519.Ed25519PublicKey) -> None:
        """The log's signature; raises `SignatureRefused` (also for a head of another log)."""
        if self.log_id != canonical.key_id(log_key):
            raise SignatureRefused("tree head is from another log")
        canonical.verify(log_key, "tree-head", self.body(), self.signature, "tree head")

    def cosigners(self, witness_keys: list[ed25519.Ed25519PublicKey]) -> set[str]:
        """The ids of the given witnesses whose cosignature on this head verifies."""
        valid: set[str] = set()
        by_id = {canonical.key_id(key): key for key in witness_keys}
        for cosignature in self.cosignatures:
            key = by_id.get(cosignature.witness)
            if key is None:
                continue
            try:
                canonical.verify(
                    key, "cosignature", _cosigned(self, cosignature), cosignature.signature, "cosignature"
                )
            except SignatureRefused:
                continue
            valid.add(cosignature.witness)
        return valid

    def with_cosignature(self, cosignature: Cosignature) -> SignedHead:
        others = tuple(c for c in self.cosignatures if c.witness != cosignature.witness)
        return replace(self, cosignatures=(*others, cosignature)[-MAX_COSIGNATURES:])

    def same_tree(self, other: SignedHead) -> bool:
        return (self.log_id, self.size, self.root) == (other.log_id, other.size, other.root)


def _cosigned(head: SignedHead, cosignature: Cosignature) -> dict[str, Any]:
    return {"head": head.body(), "witness": cosignature.witness, "timestamp": cosignature.timestamp}


def sign_head(key: ed25519.Ed25519PrivateKey, size: int, root: bytes, timestamp_ms: int) -> SignedHead:
    log_id = canonical.key_id(key.public_key())
    unsigned = SignedHead(log_id, size, root, timestamp_ms, "")
    return replace(unsigned, signature=canonical.sign(key, "tree-head", unsigned.body()))


def cosign(key: ed25519.Ed25519PrivateKey, head: SignedHead, timestamp_ms: int) -> Cosignature:
    unsigned = Cosignature(canonical.key_id(key.public_key()), timestamp_ms, "")
    return replace(unsigned, signature=canonical.sign(key, "cosignature", _cosigned(head, unsigned)))


# --- key files ---


def generate_key_file(path: str | os.PathLike[str]) -> ed25519.Ed25519PrivateKey:
    """A new Ed25519 key written to ``path`` (0600); refuses to overwrite a file."""
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    target = Path(path)
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise StateError(f"{target.name} exists: refusing to replace a key") from exc
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def load_private_key(path: str | os.PathLike[str]) -> ed25519.Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise StateError(f"cannot read an Ed25519 private key from {Path(path).name}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise StateError(f"{Path(path).name} is not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> ed25519.Ed25519PublicKey:
    """A public key from base64url text, a PEM public key, or a PEM private key's public half."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise StateError(f"cannot read a public key from {Path(path).name}") from exc
    if "PRIVATE KEY" in text:
        return load_private_key(path).public_key()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
            if isinstance(key, ed25519.Ed25519PublicKey):
                return key
            raise ValueError("not Ed25519")
        return canonical.load_public_key(text, "public key")
    except (ValueError, MalformedEntry) as exc:
        raise StateError(f"{Path(path).name} holds no Ed25519 public key") from exc
