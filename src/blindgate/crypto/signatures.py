"""Message signatures: the AMS ``Signature`` header that the official SDK makes and checks.

The Alipay+ / AMS scheme, as ``global-alipay-sdk-python`` 1.0.1 implements it, signs::

    <METHOD> <path>\\n<client-id>.<request-time>.<body>

(the path alone, never the host; the body exactly as sent) with RSA PKCS#1 v1.5 and
SHA-256, and sends::

    Signature: algorithm=RSA256,keyVersion=<N>,signature=<url-encoded base64 signature>

Requests and responses use the same scheme (a response is signed over the request's path
with the response's ``client-id`` and ``response-time``). Between agents and the gateway
the same header carries ``algorithm=ED25519`` (Ed25519, RFC 8032): smaller and an order of
magnitude faster than RSA-2048.

Ed25519 signatures also sign a ``domain``, a prefix that says what the signature is for
(`blindgate.api.signed`: a request, or the answer to one request), so that no signature made
for one purpose verifies for another. RSA256 signatures sign the AMS bytes alone, as the
official SDK checks them: there the domain is not applied. The primitives are `cryptography`'s, except Ed25519
verification, which is libsodium's (PyNaCl): about 1.8x faster than OpenSSL's here
(`benchmarks/crypto.py`), two of them on every payment at the gateway, and strict — it
refuses non-canonical encodings and small-order points, which RFC 8032 leaves optional. This
module only builds the signed bytes and the header.

What leaks: a signature reveals nothing about the body beyond what the body shows; the
header names the algorithm and key version.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote_plus, unquote_plus

from cryptography.exceptions import InvalidSignature as _LibraryInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from nacl.bindings import crypto_sign_BYTES, crypto_sign_open
from nacl.exceptions import CryptoError

from blindgate.crypto.errors import InvalidInput, InvalidSignature

RSA256: Final = "RSA256"
ED25519: Final = "ED25519"
ALGORITHMS: Final = (RSA256, ED25519)
MAX_HEADER_CHARS: Final = 4096

SigningKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
VerifyingKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey


@dataclass(frozen=True)
class SignatureHeader:
    """A parsed ``Signature`` header. ``key_version`` lets the verifier pick the signer's key."""

    algorithm: str
    key_version: int
    signature: bytes


def signed_content(
    method: str, path: str, client_id: str, request_time: str, body: str | bytes, domain: bytes = b""
) -> bytes:
    """The exact bytes the AMS scheme signs (UTF-8), after ``domain`` (Ed25519's only)."""
    head = f"{method} {path}\n{client_id}.{request_time}.".encode()
    return domain + head + (body if isinstance(body, bytes) else body.encode("utf-8"))


def sign_message(
    key: SigningKey,
    method: str,
    path: str,
    client_id: str,
    request_time: str,
    body: str | bytes,
    key_version: int = 1,
    domain: bytes = b"",
) -> str:
    """Sign a request or response; returns the ``Signature`` header's value.

    The algorithm follows the key: an RSA key gives ``RSA256`` (``domain`` not applied), an
    Ed25519 key ``ED25519`` over ``domain`` and the message.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        content = signed_content(method, path, client_id, request_time, body)
        algorithm, raw = RSA256, key.sign(content, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        content = signed_content(method, path, client_id, request_time, body, domain)
        algorithm, raw = ED25519, key.sign(content)
    else:
        raise TypeError("a signing key is an RSA or an Ed25519 private key")
    encoded = quote_plus(base64.b64encode(raw).decode("ascii"))
    return f"algorithm={algorithm},keyVersion={key_version},signature={encoded}"


def parse_signature_header(header: str | None) -> SignatureHeader:
    """Parse ``algorithm=...,keyVersion=N,signature=...``; raises `InvalidSignature` if malformed.

    A missing ``keyVersion`` reads as 1, the SDK's default.
    """
    if not header or len(header) > MAX_HEADER_CHARS:
        raise InvalidSignature("signature header is missing or too long")
    items: dict[str, str] = {}
    for item in header.strip().split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or name in items:
            raise InvalidSignature("signature header is malformed")
        items[name] = value
    algorithm, version, encoded = items.get("algorithm"), items.get("keyVersion", "1"), items.get("signature")
    if algorithm not in ALGORITHMS or not encoded:
        raise InvalidSignature("signature header names no known algorithm or no signature")
    if not (version.isascii() and version.isdigit() and 1 <= len(version) <= 9 and int(version) >= 1):
        raise InvalidSignature("signature header's keyVersion is not a positive integer")
    try:
        raw = base64.b64decode(unquote_plus(encoded), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSignature("signature is not base64") from exc
    return SignatureHeader(algorithm, int(version), raw)


def verify_message(
    public_key: VerifyingKey,
    header: str | SignatureHeader | None,
    method: str,
    path: str,
    client_id: str,
    request_time: str,
    body: str | bytes,
    domain: bytes = b"",
) -> SignatureHeader:
    """Check a ``Signature`` header against the message (and, for Ed25519, ``domain``); returns
    it parsed, or raises `InvalidSignature`."""
    parsed = header if isinstance(header, SignatureHeader) else parse_signature_header(header)
    try:
        content = signed_content(
            method, path, client_id, request_time, body, domain if parsed.algorithm == ED25519 else b""
        )
    except UnicodeEncodeError as exc:  # e.g. a lone surrogate: nobody signed that
        raise InvalidSignature("signed text is not valid Unicode") from exc
    try:
        if isinstance(public_key, rsa.RSAPublicKey) and parsed.algorithm == RSA256:
            public_key.verify(parsed.signature, content, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ed25519.Ed25519PublicKey) and parsed.algorithm == ED25519:
            verify_ed25519(public_key, parsed.signature, content)
        else:
            raise InvalidSignature("signature algorithm does not match the signer's key")
    except _LibraryInvalidSignature as exc:
        raise InvalidSignature("signature does not verify") from exc
    return parsed


def verify_ed25519(public_key: ed25519.Ed25519PublicKey, signature: bytes, content: bytes) -> None:
    """RFC 8032 Ed25519 verification by libsodium; raises `InvalidSignature`."""
    if len(signature) != crypto_sign_BYTES:
        raise InvalidSignature("signature does not verify")
    try:
        crypto_sign_open(signature + content, public_key.public_bytes_raw())
    except (CryptoError, ValueError, TypeError) as exc:
        raise InvalidSignature("signature does not verify") from exc


# --- Key formats the official SDK takes: bare base64, as the Alipay+ portal shows keys. ---


def rsa_private_key_for_sdk(key: rsa.RSAPrivateKey) -> str:
    """The SDK's ``merchant_private_key``: base64 PKCS#1 DER (it adds the PEM lines itself)."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode("ascii")


def rsa_public_key_for_sdk(key: rsa.RSAPublicKey) -> str:
    """The SDK's ``alipay_public_key``: base64 SubjectPublicKeyInfo DER."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def load_rsa_public_key(text: str) -> rsa.RSAPublicKey:
    """Load an RSA public key given as PEM or as the SDK's bare base64; raises `InvalidInput`."""
    try:
        if "-----BEGIN" in text:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except Exception as exc:
        raise InvalidInput("not an RSA public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidInput("not an RSA public key")
    return key
