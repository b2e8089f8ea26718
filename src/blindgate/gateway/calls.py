"""The gateway's signed calls to the partners' agents (wallet operations, notifications).

Ed25519 both ways: the gateway signs with its own key as client id ``gateway.party_id``;
the agent's answer must verify against the agent's published Ed25519 key, and must name the
request it answers (`blindgate.api.calls.ANSWERED_IDS`). An agent whose network-file entry
carries a ``tls_cert`` is called through a client that trusts that certificate alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from blindgate.api.calls import ANSWERED_IDS, NoAnswer, Signer, signed_call
from blindgate.api.network import Partner
from blindgate.crypto.errors import InvalidSignature
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519, SignatureHeader, VerifyingKey


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
