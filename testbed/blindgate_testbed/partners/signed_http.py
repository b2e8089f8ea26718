"""The AMS / Alipay+ message envelope the reference partners speak: signed JSON over HTTP.

A request carries ``Client-Id``, ``Request-Time`` and ``Signature: algorithm=RSA256,...``
over ``POST <path>\\n<client-id>.<request-time>.<body>``; the answer is HTTP 200 with a JSON
body holding ``result {resultCode, resultStatus, resultMessage}``, signed the same way with
``Client-Id`` and ``Response-Time`` — the integration a wallet or an acquirer already has
with Alipay+, which is what the blindgate agents talk to. Signing is `blindgate.crypto`'s.

Errors never echo a field's value: messages are fixed strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response

from blindgate.crypto.errors import InvalidSignature
from blindgate.crypto.signatures import sign_message, verify_message

MAX_BODY_BYTES = 64 * 1024
MAX_CLOCK_SKEW_S = 300


@dataclass(frozen=True)
class PartnerKeys:
    """What a partner backend needs to speak signed AMS: its own key, and its peer's public key.

    ``client_id`` names the integration, as in AMS: both directions carry the same one.
    """

    client_id: str
    private_key: rsa.RSAPrivateKey
    peer_public_key: rsa.RSAPublicKey
    key_version: int = 1


class Rejected(Exception):
    """A request that gets an AMS error result (resultStatus F) instead of being processed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def result(code: str = "SUCCESS", status: str = "S", message: str = "success") -> dict[str, str]:
    return {"resultCode": code, "resultStatus": status, "resultMessage": message}


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def _parse_time(text: str) -> float:
    """``Request-Time`` as the SDK sends it (ISO 8601) or as epoch milliseconds."""
    if text.isdigit():
        return int(text) / 1000
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("Request-Time has no time zone")
    return parsed.timestamp()


async def read_signed_json(request: Request, keys: PartnerKeys) -> dict[str, Any]:
    """Read, bound, verify and parse a signed request; raises `Rejected` with its AMS code."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise Rejected("PARAM_ILLEGAL", "request body is too large")
    client_id = request.headers.get("client-id", "")
    request_time = request.headers.get("request-time", "")
    if client_id != keys.client_id:
        raise Rejected("KEY_NOT_FOUND", "unknown client id")
    try:
        stale = abs(_parse_time(request_time) - datetime.now(UTC).timestamp()) > MAX_CLOCK_SKEW_S
    except ValueError:
        stale = True
    if stale:
        raise Rejected("INVALID_SIGNATURE", "Request-Time is missing or stale")
    try:
        verify_message(
            keys.peer_public_key,
            request.headers.get("signature"),
            "POST",
            request.url.path,
            client_id,
            request_time,
            body,
        )
    except InvalidSignature as exc:
        raise Rejected("INVALID_SIGNATURE", "signature is missing or does not verify") from exc
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected("PARAM_ILLEGAL", "body is not JSON") from exc
    if not isinstance(parsed, dict):
        raise Rejected("PARAM_ILLEGAL", "body is not a JSON object")
    return parsed


def signed_json_response(path: str, payload: dict[str, Any], keys: PartnerKeys) -> Response:
    """HTTP 200 with ``payload`` signed over the request's path, as the AMS API answers."""
    body = json.dumps(payload, separators=(",", ":"))
    response_time = now_iso()
    signature = sign_message(
        keys.private_key, "POST", path, keys.client_id, response_time, body, keys.key_version
    )
    headers = {"client-id": keys.client_id, "response-time": response_time, "signature": signature}
    return Response(body, media_type="application/json; charset=UTF-8", headers=headers)


def signed_request_headers(path: str, body: str, keys: PartnerKeys) -> dict[str, str]:
    """Headers for a signed request from ``keys.client_id`` (used by tests and by callers)."""
    request_time = now_iso()
    signature = sign_message(
        keys.private_key, "POST", path, keys.client_id, request_time, body, keys.key_version
    )
    return {
        "content-type": "application/json; charset=UTF-8",
        "client-id": keys.client_id,
        "request-time": request_time,
        "signature": signature,
    }
