"""Signed calls from the gateway to a partner's agent (wallet operations, notifications).

Ed25519 both ways: the gateway signs with its own key as client id ``gateway.party_id``;
the agent's answer must verify against the agent's published Ed25519 key. Any failure to
get a verified answer in time — timeout, connection error, non-200, bad signature, not
JSON — is `NoAnswer`: the caller must treat the outcome as unknown (resultStatus U).

An answer must also be about this request: the AMS answer signature covers the answer, not
the request it answers, so a signed SUCCESS for one payment could otherwise be replayed as
the answer to another. The partners' agents (`blindgate.agent`) name the request they answer
(its ``paymentRequestId`` / ``refundRequestId``, under their signature); an answer that
names another request is `NoAnswer`.

TLS: an agent whose network-file entry carries a ``tls_cert`` is called through a client that
trusts that certificate alone (`pinned_client`), so neither a certificate authority nor another
partner can stand in for it; a failed handshake is `NoAnswer` like any other.

`signed_call` is the round trip itself (sign, post, verify, parse), shared with the agents'
own calls (`blindgate.agent`: to their backend with RSA256, to the gateway with Ed25519).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from blindgate.api.signed import encode, request_headers, verify_response
from blindgate.crypto.errors import InvalidSignature, UnknownKey
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import (
    ED25519,
    SignatureHeader,
    SigningKey,
    VerifyingKey,
    parse_signature_header,
)
from blindgate.gateway.config import Partner


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

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        raise TypeError("the gateway's calls to partners carry no cookies")


# The request ids an answer that names them must repeat.
ANSWERED_IDS = ("paymentRequestId", "refundRequestId")


class NoAnswer(Exception):
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
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise NoAnswer(type(exc).__name__) from None
    if response.status_code != 200:
        raise NoAnswer(f"HTTP {response.status_code}")
    try:
        header = parse_signature_header(response.headers.get("signature"))
        verify_response(response.headers, path, response.content, key_for(header), header)
        answer = json.loads(response.content)
    except (InvalidSignature, UnknownKey, ValueError):
        raise NoAnswer("answer is unsigned, badly signed or not JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("result"), dict):
        raise NoAnswer("answer has no result")
    return answer


def pinned_client(pinned_pem: str, max_connections: int) -> CookielessClient:
    """A client for a server that presents ``pinned_pem``: it trusts that certificate alone
    (hostname checked too), no certificate authority."""
    return CookielessClient(
        verify=ssl.create_default_context(cadata=pinned_pem),
        limits=httpx.Limits(max_connections=max_connections),
    )


class PartnerCaller:
    """Signed calls to the partners' agents: ``client`` for every agent but those with a
    client of their own in ``pinned`` (party id -> a client trusting its pinned certificate)."""

    def __init__(
        self,
        party_id: str,
        keys: KeyStore,
        client: httpx.AsyncClient,
        pinned: Mapping[str, httpx.AsyncClient] | None = None,
    ) -> None:
        self._signer = Signer(party_id, *keys.signing_key(ED25519))
        self._client = client
        self._pinned = dict(pinned or {})
        # Parsed once (httpx parses a str URL and builds a Timeout on every request otherwise);
        # bounded by the network file's partners x the paths and timeouts the gateway uses.
        self._urls: dict[str, httpx.URL] = {}
        self._timeouts: dict[float, httpx.Timeout] = {}

    async def call(
        self, partner: Partner, path: str, payload: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        url = partner.agent_url + path
        if url not in self._urls:
            self._urls[url] = httpx.URL(url)
        if timeout_s not in self._timeouts:
            self._timeouts[timeout_s] = httpx.Timeout(timeout_s)

        def agent_key(header: SignatureHeader) -> VerifyingKey:
            if header.algorithm != ED25519:
                raise InvalidSignature("agents answer with Ed25519")
            return partner.keys.verifying_key(header.algorithm, header.key_version)

        answer = await signed_call(
            self._pinned.get(partner.party_id, self._client),
            self._urls[url],
            path,
            payload,
            self._signer,
            agent_key,
            self._timeouts[timeout_s],
        )
        if any(key in answer and key in payload and answer[key] != payload[key] for key in ANSWERED_IDS):
            raise NoAnswer("answer is about another request")
        return answer
