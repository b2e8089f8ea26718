"""The AMS / Alipay+ message envelope the reference partners speak: signed JSON over HTTP.

A request carries ``Client-Id``, ``Request-Time`` and ``Signature: algorithm=RSA256,...``
over ``POST <path>\\n<client-id>.<request-time>.<body>``; the answer is HTTP 200 with a JSON
body holding ``result {resultCode, resultStatus, resultMessage}``, signed the same way with
``Client-Id`` and ``Response-Time`` — the integration a wallet or an acquirer already has
with Alipay+, which is what the blindgate agents talk to. The envelope is the wire
contract's (`blindgate.api.signed`); this module only holds a backend's keys.

Errors never echo a field's value: messages are fixed strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response

from blindgate.api.models import parse_json_object
from blindgate.api.results import ApiError as Rejected
from blindgate.api.signed import digest_of_request, now_iso, request_headers, signed_response, verify_request
from blindgate.crypto.errors import UnknownKey
from blindgate.crypto.signatures import VerifyingKey

__all__ = [
    "PartnerKeys",
    "Rejected",
    "now_iso",
    "read_signed_json",
    "result",
    "signed_json_response",
    "signed_request_headers",
]


@dataclass(frozen=True)
class PartnerKeys:
    """What a partner backend needs to speak signed AMS: its own key, and its peer's public key.

    ``client_id`` names the integration, as in AMS: both directions carry the same one.
    """

    client_id: str
    private_key: rsa.RSAPrivateKey
    peer_public_key: rsa.RSAPublicKey
    key_version: int = 1

    def peer_key(self, client_id: str, algorithm: str, version: int) -> VerifyingKey:
        if client_id != self.client_id:
            raise UnknownKey("unknown client id")
        return self.peer_public_key


def result(code: str = "SUCCESS", status: str = "S", message: str = "success") -> dict[str, str]:
    return {"resultCode": code, "resultStatus": status, "resultMessage": message}


async def read_signed_json(request: Request, keys: PartnerKeys) -> dict[str, Any]:
    """Read, verify and parse a signed request; raises `Rejected` with its AMS code."""
    body = await request.body()
    parsed = parse_json_object(body)  # bounds the body first
    verify_request(request.headers, request.url.path, body, keys.peer_key)
    return parsed


async def signed_json_response(request: Request, payload: dict[str, Any], keys: PartnerKeys) -> Response:
    """HTTP 200 with ``payload`` signed over the request's path, as the AMS API answers."""
    path = request.url.path
    answering = digest_of_request(request.headers, path, await request.body())
    return signed_response(path, payload, keys.client_id, keys.private_key, keys.key_version, answering)


def signed_request_headers(path: str, body: str, keys: PartnerKeys) -> dict[str, str]:
    """Headers for a signed request from ``keys.client_id``."""
    return request_headers(path, body.encode(), keys.client_id, keys.private_key, keys.key_version)
