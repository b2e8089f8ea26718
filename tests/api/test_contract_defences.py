"""The wire contract's own defences: no plaintext switch, bounded bodies, signature domains,
personal fields that travel only sealed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from starlette.types import Message

from blindgate.agent.policy import FieldPolicy
from blindgate.api.bodies import bounded_bodies
from blindgate.api.fields import personal_in_clear
from blindgate.api.network import ConfigError, parse_network
from blindgate.api.signed import request_digest, request_headers, signed_response, verify_response
from blindgate.crypto.errors import InvalidSignature
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import seal_field


def test_the_network_file_cannot_switch_sealing_off(tmp_path: Any) -> None:
    keys = KeyStore.create(tmp_path / "gw", "GATEWAY", signing_only=True)
    document = {
        "format": "blindgate-network/1",
        "gateway": {
            "party_id": "GATEWAY",
            "url": "http://gw",
            "keys": keys.public_bundle(),
            "plaintext": True,
        },
        "partners": [],
    }
    with pytest.raises(ConfigError, match="cannot switch sealing off"):
        parse_network(document)


def _post(
    app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]], pause_s: float = 0.0
) -> tuple[int, int]:
    """POST ``chunks`` to ``app``; (the answer's status, the chunks the app took)."""
    taken, sent = 0, []

    async def receive() -> Message:
        nonlocal taken
        if taken < len(chunks):
            taken += 1
            await asyncio.sleep(pause_s)
            return {"type": "http.request", "body": chunks[taken - 1], "more_body": taken < len(chunks)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], taken


async def _echo(scope: Any, receive: Any, send: Any) -> None:
    body = (await receive())["body"]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_bodies_within_bounds_pass_and_others_are_refused_unread() -> None:
    app = bounded_bodies(_echo, limit=100, timeout_s=0.3)
    assert _post(app, [b"a" * 50, b"b" * 50], []) == (200, 2)
    assert _post(app, [b"a" * 60] * 10, []) == (413, 2)  # refused at the chunk past the limit
    assert _post(app, [b"a"], [(b"content-length", b"1000000")]) == (413, 0)  # declared: none read
    assert _post(app, [b"a"] * 10, [], pause_s=0.1)[0] == 408  # a slow sender is cut off


def test_a_signature_made_for_one_purpose_verifies_for_no_other() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    body = b'{"paymentRequestId":"A"}'
    request = request_headers("/p", body, "GATEWAY", key, 1)
    asked = request_digest("/p", "GATEWAY", request["request-time"], body)
    answer = signed_response("/p", {"ok": 1}, "AGENT", key, 1, asked)
    verify_response(answer.headers, "/p", bytes(answer.body), key.public_key(), asked)
    other = request_digest("/p", "GATEWAY", request["request-time"], b'{"paymentRequestId":"B"}')
    with pytest.raises(InvalidSignature):  # an answer to A is no answer to B
        verify_response(answer.headers, "/p", bytes(answer.body), key.public_key(), other)
    as_answer = {
        "client-id": "GATEWAY",
        "response-time": request["request-time"],
        "signature": request["signature"],
    }
    with pytest.raises(InvalidSignature):  # a request's signature is no answer's
        verify_response(as_answer, "/p", body, key.public_key(), asked)


def test_personal_fields_travel_only_sealed(tmp_path: Any) -> None:
    keys = KeyStore.create(tmp_path / "w", "W")
    sealed = seal_field(b'"x@example.com"', keys.recipient_key(), "order.buyer.buyerEmail", "ctx")
    assert (
        personal_in_clear({"order": {"buyer": {"buyerEmail": "x@example.com"}}}) == "order.buyer.buyerEmail"
    )
    assert personal_in_clear({"order": {"buyer": {"buyerEmail": sealed}}}) is None
    assert (
        personal_in_clear({"order": {"orderDescription": "coffee"}, "paymentAmount": {"value": "1"}}) is None
    )
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"format": "blindgate-field-policy/1", "clear": ["order.buyer.*"]}))
    with pytest.raises(ValueError, match="personal field"):
        FieldPolicy.load(policy)
