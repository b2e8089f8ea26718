"""Signed AMS messages over HTTP: verify a request, sign an answer, sign and check a call.

The AMS envelope: ``Client-Id``, ``Request-Time`` (``Response-Time`` on answers) and
``Signature: algorithm=RSA256|ED25519,keyVersion=N,signature=...`` over
``POST <path>\\n<client-id>.<time>.<body>`` (`blindgate.crypto.signatures`). Used at every
hop of the payment path: RSA256 where the official SDK or a partner backend speaks,
Ed25519 between the agents and the gateway.

Failures map to AMS codes (every one HTTP 200, status F): an unknown client id or key
version is KEY_NOT_FOUND; a missing, malformed or wrong signature, or a ``Request-Time``
missing or further than the allowed skew from now, is INVALID_SIGNATURE.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response

from blindgate.api.results import ApiError
from blindgate.crypto.errors import InvalidSignature, UnknownKey
from blindgate.crypto.signatures import (
    SignatureHeader,
    SigningKey,
    VerifyingKey,
    parse_signature_header,
    sign_message,
    verify_message,
)

DEFAULT_SKEW_S = 300
# (client id, algorithm, key version) -> the signer's public key; raises UnknownKey.
KeyLookup = Callable[[str, str, int], VerifyingKey]


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def check_time(text: str | None, skew_s: int = DEFAULT_SKEW_S) -> None:
    """``Request-Time`` as the SDK sends it (ISO 8601 with zone) or epoch milliseconds."""
    try:
        if not text or len(text) > 40:
            raise ValueError("missing")
        moment = int(text) / 1000 if text.isdigit() else datetime.fromisoformat(text).timestamp()
        if not text.isdigit() and datetime.fromisoformat(text).tzinfo is None:
            raise ValueError("no zone")
    except ValueError:
        raise ApiError("INVALID_SIGNATURE", "Request-Time is missing or malformed") from None
    if abs(moment - datetime.now(UTC).timestamp()) > skew_s:
        raise ApiError("INVALID_SIGNATURE", "Request-Time is stale")


def verify_request(
    headers: Mapping[str, str], path: str, body: bytes, lookup: KeyLookup, skew_s: int = DEFAULT_SKEW_S
) -> str:
    """Check a signed request; returns its client id or raises `ApiError` with the AMS code."""
    client_id = headers.get("client-id")
    if not client_id or len(client_id) > 64:
        raise ApiError("KEY_NOT_FOUND", "Client-Id is missing")
    request_time = headers.get("request-time")
    check_time(request_time, skew_s)
    assert request_time is not None
    try:
        parsed = parse_signature_header(headers.get("signature"))
        key = lookup(client_id, parsed.algorithm, parsed.key_version)
        verify_message(key, parsed, "POST", path, client_id, request_time, body)
    except UnknownKey:
        raise ApiError("KEY_NOT_FOUND", "no key for this client id and key version") from None
    except InvalidSignature:
        raise ApiError("INVALID_SIGNATURE", "the signature is missing or does not verify") from None
    return client_id


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_response(
    path: str, payload: Mapping[str, Any], client_id: str, key: SigningKey, key_version: int
) -> Response:
    """HTTP 200 with ``payload`` signed over the request's path, as the AMS API answers."""
    body = encode(payload)
    response_time = now_iso()
    signature = sign_message(key, "POST", path, client_id, response_time, body, key_version)
    headers = {"client-id": client_id, "response-time": response_time, "signature": signature}
    return Response(body, media_type="application/json; charset=UTF-8", headers=headers)


def request_headers(
    path: str, body: bytes, client_id: str, key: SigningKey, key_version: int
) -> dict[str, str]:
    request_time = now_iso()
    signature = sign_message(key, "POST", path, client_id, request_time, body, key_version)
    return {
        "content-type": "application/json; charset=UTF-8",
        "client-id": client_id,
        "request-time": request_time,
        "signature": signature,
    }


def verify_response(
    headers: Mapping[str, str],
    path: str,
    body: bytes,
    key: VerifyingKey,
    parsed: SignatureHeader | None = None,
) -> None:
    """Check an answer's signature (over the request's path); raises `InvalidSignature`.
    ``parsed``: its ``Signature`` header, when the caller has parsed it already (to pick the key)."""
    response_time = headers.get("response-time") or ""
    signature = parsed if parsed is not None else headers.get("signature")
    verify_message(key, signature, "POST", path, headers.get("client-id") or "", response_time, body)
