"""The signed call: one AMS round trip between two parties of the payment path.

`signed_call` signs a request, posts it, verifies the answer's signature and parses it. The
gateway calls the agents with it, and the agents call the gateway and their own backends.
Any failure to get a verified answer in time — timeout, connection error, non-200, bad
signature, not JSON — is `NoAnswer`: the caller must treat the outcome as unknown
(resultStatus U).

An answer must also be about this request: the AMS answer signature covers the answer, not
the request it answers, so a signed SUCCESS for one payment could otherwise be replayed as
the answer to another. The partners' agents (`blindgate.agent`) name the request they answer
(its ``paymentRequestId`` / ``refundRequestId``, under their signature); an answer that
names another request is `NoAnswer`.

TLS: an agent whose network-file entry carries a ``tls_cert`` is called through a client that
trusts that certificate alone (`pinned_client`), so neither a certificate authority nor another
partner can stand in for it; a failed handshake is `NoAnswer` like any other.

"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from blindgate.api.errors import ContractError
from blindgate.api.signed import encode, request_digest, request_headers, verify_response
from blindgate.api.transport import AiohttpTransport
from blindgate.crypto.errors import InvalidSignature, UnknownKey
from blindgate.crypto.signatures import (
    SignatureHeader,
    SigningKey,
    VerifyingKey,
    parse_signature_header,
)


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class CookielessClient(httpx.AsyncClient):
    """An HTTP client with no cookie jar, for the gateway's calls to partners' agents.

    These are signed server-to-server calls: a cookie one agent sets has no business in the
    gateway's later calls. httpx keeps a jar per client and parses every answer's headers into
    it, about 35 us of CPU a call here (a third of the client's own cost on the pay path).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._jar = _NoCookies()
        transport = kwargs.get("transport")
        # On a real network `signed_call` posts straight on it (`AiohttpTransport.post`).
        self.direct = transport if isinstance(transport, AiohttpTransport) else None

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("the gateway's calls to partners carry no cookies")


# The request ids an answer that names them must repeat.
ANSWERED_IDS = ("paymentRequestId", "refundRequestId")


class NoAnswer(ContractError):
    """The partner gave no verified answer in time: the outcome is unknown."""


@dataclass(frozen=True)
class Signer:
    """Who signs a call: the client id it names and its key (and version)."""

    client_id: str
    key: SigningKey
    version: int


async def signed_call(
    client: httpx.AsyncClient,
    url: str | httpx.URL,
    path: str,
    payload: Mapping[str, Any],
    signer: Signer,
    key_for: Callable[[SignatureHeader], VerifyingKey],
    timeout: float | httpx.Timeout,
) -> dict[str, Any]:
    """POST ``payload`` signed by ``signer``; the answer, verified with ``key_for`` its header's
    key. Anything but a verified JSON object with a ``result`` raises `NoAnswer`."""
    body = encode(payload)
    headers = request_headers(path, body, signer.client_id, signer.key, signer.version)
    sent = request_digest(path, signer.client_id, headers["request-time"], body)
    try:
        status, answer_headers, content = await _post(client, str(url), body, headers, timeout)
    except httpx.HTTPError as exc:
        raise NoAnswer(type(exc).__name__) from None
    if status != 200:
        raise NoAnswer(f"HTTP {status}")
    try:
        header = parse_signature_header(answer_headers.get("signature"))
        verify_response(answer_headers, path, content, key_for(header), sent, header)
        answer = json.loads(content)
    except (InvalidSignature, UnknownKey, ValueError):
        raise NoAnswer("answer is unsigned, badly signed or not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
        raise NoAnswer("answer has no result")
    return answer


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float | httpx.Timeout
) -> tuple[int, Mapping[str, str], bytes]:
    """The answer's status, headers and body: straight on aiohttp where the client runs on it
    (`blindgate.api.transport`, a direct POST), else through httpx's client (in process)."""
    direct = client.direct if isinstance(client, CookielessClient) else None
    if direct is None:
        response = await client.post(url, content=body, headers=headers, timeout=timeout)
        return response.status_code, response.headers, response.content
    total = timeout.read or timeout.connect if isinstance(timeout, httpx.Timeout) else timeout
    answer = await direct.post(url, body, headers, total)
    return answer.status, answer.headers, answer.body


def network_client(
    max_connections: int, transport: httpx.AsyncBaseTransport | None = None
) -> CookielessClient:
    """A client for the partners' calls: over ``transport`` where tests or benchmarks route
    in process, else over the network (`blindgate.api.transport.AiohttpTransport`)."""
    return CookielessClient(transport=transport or AiohttpTransport(max_connections=max_connections))


def pinned_client(pinned_pem: str, max_connections: int) -> CookielessClient:
    """A client for a server that presents ``pinned_pem``: it trusts that certificate alone
    (hostname checked too), no certificate authority."""
    context = ssl.create_default_context(cadata=pinned_pem)
    return CookielessClient(transport=AiohttpTransport(ssl_context=context, max_connections=max_connections))
