"""Canonical JSON and domain-separated Ed25519 signatures: the byte forms everything here signs.

Canonical JSON: keys sorted, no whitespace, UTF-8, and only the types whose encoding is
unambiguous — objects with ASCII string keys, arrays, strings, integers in the signed
64-bit range, booleans and null; no floats. On that subset Python's ``json.dumps(...,
sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` is exactly RFC 8785 (JCS):
ASCII keys sort the same by code point as by UTF-16 unit, and integers have one form. So
one value has one byte form, and `parse` refuses any text that is not that form (a second
spelling of a signed entry would be a second leaf for the same content).

Signatures are Ed25519 (RFC 8032, `cryptography` signs, libsodium verifies strictly via
`blindgate.crypto.signatures.verify_ed25519`) over ``"blindgate/translog/<purpose>/v1\\n"``
followed by the canonical body: a signature made for one purpose (a tree head, a
cosignature, a key bundle, a receipt) never verifies as another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.crypto.errors import InvalidSignature
from blindgate.crypto.signatures import verify_ed25519
from blindgate.translog.errors import MalformedEntry, SignatureRefused

MAX_DEPTH: Final = 16
INT_RANGE: Final = (-(1 << 63), (1 << 63) - 1)
PURPOSES: Final = (
    "tree-head",
    "cosignature",
    "entry/key_bundle",
    "entry/field_policy",
    "entry/network_file",
    "entry/data_use_receipt",
)


def encode(value: Any) -> bytes:
    """The canonical bytes of a JSON value; raises `MalformedEntry` outside the subset."""
    _check(value, 0)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse(data: bytes, max_bytes: int) -> Any:
    """Parse canonical JSON; refuses anything over ``max_bytes`` or not in canonical form."""
    if len(data) > max_bytes:
        raise MalformedEntry(f"JSON document is over {max_bytes} bytes")
    try:
        value = json.loads(data.decode("utf-8"), parse_float=_no_float, parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedEntry("not JSON") from exc
    if encode(value) != data:
        raise MalformedEntry("JSON is not in canonical form")
    return value


def _no_float(_text: str) -> Any:
    raise ValueError("floats are not canonical")


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise MalformedEntry("JSON nests too deep")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise MalformedEntry("integer outside the signed 64-bit range")
        return
    if isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not (isinstance(key, str) and key.isascii()):
                raise MalformedEntry("JSON object keys must be ASCII strings")
            _check(item, depth + 1)
        return
    raise MalformedEntry(f"{type(value).__name__} has no canonical JSON form")


def signed_bytes(purpose: str, body: Any) -> bytes:
    if purpose not in PURPOSES:
        raise ValueError("unknown signature purpose")
    return f"blindgate/translog/{purpose}/v1\n".encode() + encode(body)


def sign(key: ed25519.Ed25519PrivateKey, purpose: str, body: Any) -> str:
    """A base64url Ed25519 signature over the purpose's label and the canonical body."""
    return b64url_encode(key.sign(signed_bytes(purpose, body)))


def verify(key: ed25519.Ed25519PublicKey, purpose: str, body: Any, signature: str, what: str) -> None:
    """Raise `SignatureRefused` (naming ``what``) unless ``signature`` verifies."""
    try:
        verify_ed25519(key, b64url_decode(signature), signed_bytes(purpose, body))
    except (InvalidSignature, ValueError, TypeError) as exc:
        raise SignatureRefused(f"{what}: signature does not verify") from exc


def public_key_text(key: ed25519.Ed25519PublicKey) -> str:
    return b64url_encode(key.public_bytes_raw())


def load_public_key(text: Any, what: str) -> ed25519.Ed25519PublicKey:
    try:
        return ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(text))
    except (ValueError, TypeError) as exc:
        raise MalformedEntry(f"{what} is not an Ed25519 public key") from exc


def key_id(key: ed25519.Ed25519PublicKey) -> str:
    """A short, stable name of a public key: base64url of 12 bytes of SHA-256 over a label and it."""
    digest = hashlib.sha256(b"blindgate/translog/key-id/v1\n" + key.public_bytes_raw()).digest()
    return b64url_encode(digest[:12])


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>``, the form every digest takes in entries."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
