"""Signed AMS messages over HTTP: verify a request, sign an answer, sign and check a call.

The AMS envelope: ``Client-Id``, ``Request-Time`` (``Response-Time`` on answers) and
``Signature: algorithm=RSA256|ED25519,keyVersion=N,signature=...`` over
``POST <path>\\n<client-id>.<time>.<body>`` (`blindgate.crypto.signatures`). Used at every
hop of the payment path: RSA256 where the official SDK or a partner backend speaks,
Ed25519 between the agents and the gateway.

Failures map to AMS codes (every one HTTP 200, status F): an unknown client id or key
version is KEY_NOT_FOUND; a missing, malformed or wrong signature, or a ``Request-Time``
missing or further than the allowed skew from now, is INVALID_SIGNATURE.

Every answer names the request it answers. Its ``Answers-Request`` header carries the
request's digest (`request_digest`: SHA-256 of the request's signed bytes, which hold its
path, client id, time and body, ids included) and, with Ed25519, the answer's signature covers
that digest under the answer domain, while a request is signed under the request domain. So a
request's signature never verifies as an answer, and an answer only for the one request it
was made for — errors and answers to unauthenticated requests included; `verify_response`
also refuses an answer whose ``Response-Time`` is outside the clock-skew window. (RSA256, the
SDK's and the partner backends' scheme, has no domain: the official SDK checks the AMS bytes.)
"""

from __future__ import annotations

import hashlib
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
    signed_content,
    verify_message,
)

DEFAULT_SKEW_S = 300
REQUEST_DOMAIN = b"blindgate-ams/1 request\n"
ANSWERS_HEADER = "answers-request"
# (client id, algorithm, key version) -> the signer's public key; raises UnknownKey.
KeyLookup = Callable[[str, str, int], VerifyingKey]


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def answer_domain(request: bytes) -> bytes:
    """The domain of an answer to the request whose digest is ``request``."""
    return b"blindgate-ams/1 answer " + request.hex().encode() + b"\n"


def request_digest(path: str, client_id: str, request_time: str, body: bytes) -> bytes:
    """What an answer names: SHA-256 of the request's signed bytes (path, client id, time, body)."""
    content = signed_content("POST", path, client_id, request_time, body, REQUEST_DOMAIN)
    return hashlib.sha256(content).digest()


def digest_of_request(headers: Mapping[str, str], path: str, body: bytes) -> bytes:
    """`request_digest` of a received request, signed or not (an answer to garbage names it too)."""
    return request_digest(path, headers.get("client-id") or "", headers.get("request-time") or "", body)


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
        verify_message(key, parsed, "POST", path, client_id, request_time, body, REQUEST_DOMAIN)
    except UnknownKey:
        raise ApiError("KEY_NOT_FOUND", "no key for this client id and key version") from None
    except InvalidSignature:
        raise ApiError("INVALID_SIGNATURE", "the signature is missing or does not verify") from None
    return client_id


def encode(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signed_response(
    path: str,
    payload: Mapping[str, Any],
    client_id: str,
    key: SigningKey,
    key_version: int,
    answering: bytes,
) -> Response:
    """HTTP 200 with ``payload`` signed over the request's path, as the AMS API answers, naming
    the request it answers (``answering``: its `request_digest`)."""
    body = encode(payload)
    response_time = now_iso()
    signature = sign_message(
        key, "POST", path, client_id, response_time, body, key_version, answer_domain(answering)
    )
    headers = {
        "client-id": client_id,
        "response-time": response_time,
        "signature": signature,
        ANSWERS_HEADER: answering.hex(),
    }
    return Response(body, media_type="application/json; charset=UTF-8", headers=headers)


def request_headers(
    path: str, body: bytes, client_id: str, key: SigningKey, key_version: int
) -> dict[str, str]:
    request_time = now_iso()
    signature = sign_message(key, "POST", path, client_id, request_time, body, key_version, REQUEST_DOMAIN)
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
    answering: bytes,
    parsed: SignatureHeader | None = None,
    skew_s: int = DEFAULT_SKEW_S,
) -> None:
    """Check an answer to the request whose digest is ``answering``: its signature (over the
    request's path and, with Ed25519, that digest) and its freshness; raises `InvalidSignature`.
    ``parsed``: its ``Signature`` header, when the caller has parsed it already (to pick the key)."""
    response_time = headers.get("response-time") or ""
    try:
        check_time(response_time, skew_s)
    except ApiError:
        raise InvalidSignature("the answer's Response-Time is missing or stale") from None
    signature = parsed if parsed is not None else headers.get("signature")
    verify_message(
        key,
        signature,
        "POST",
        path,
        headers.get("client-id") or "",
        response_time,
        body,
        answer_domain(answering),
    )
