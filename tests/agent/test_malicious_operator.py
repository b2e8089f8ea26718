"""The operator as the adversary: a gateway that signs whatever it likes toward the agents.

`MaliciousGateway` holds only what the operator holds — the gateway's own signing key, the
gateway's store, its position between the agents — and plays each deviation of the threat
model (docs/threat-model.md) against every message type an agent accepts from the gateway:
forged contexts, foreign envelopes, redirected URLs, replays, stale or unbound answers,
oversized bodies. After each, nothing personal has left an agent (every request and answer
that crossed the in-process network is scanned for the payer's values) and no money moved
twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from blindgate.agent.journal import FRESH_S
from blindgate.agent.policy import FieldPolicy, seal_message
from blindgate.api.calls import Signer, signed_call
from blindgate.api.contexts import SEALED_AT_FIELD, seal_context
from blindgate.api.models import (
    INQUIRY_PATH,
    NOTIFY_AGENT_PATH,
    PAY_PATH,
    WALLET_INQUIRY_PATH,
    WALLET_PATHS,
    WALLET_PAY_PATH,
)
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import open_field
from blindgate.crypto.signatures import ED25519, SignatureHeader, VerifyingKey
from blindgate.gateway.app import engine_of
from tests.gateway.harness import (
    ACQUIRER_ID,
    GATEWAY,
    PAYER,
    WALLET_ID,
    LocalNetwork,
    build,
    pay_body,
    run,
)

ACQUIRER_AGENT, WALLET_AGENT, EVIL = "a1-agent.test", "w1-agent.test", "evil.test"
PERSONAL = (PAYER.customer_id, PAYER.phone, PAYER.email, PAYER.payment_code, PAYER.device_id, PAYER.ip)


class MaliciousGateway:
    """The operator: its own Ed25519 key, its store, and the in-process network's position."""

    def __init__(self, net: LocalNetwork) -> None:
        self.net = net
        self.signer = Signer(GATEWAY, *KeyStore(net.root / "gateway-keys").signing_key(ED25519))

    async def send(self, host: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A request signed with the gateway's key, as the gateway would send it."""
        party = ACQUIRER_ID if host == ACQUIRER_AGENT else WALLET_ID
        keys = self.net.network.partner(party)
        assert keys is not None

        def agent_key(header: SignatureHeader) -> VerifyingKey:
            return keys.keys.verifying_key(header.algorithm, header.key_version)

        async with httpx.AsyncClient(transport=self.net.router) as client:
            return await signed_call(
                client, f"http://{host}{path}", path, payload, self.signer, agent_key, 5.0
            )

    def stored_notification(self, request_id: str) -> dict[str, Any]:
        """The notification body the gateway stored for a payment (what it would send)."""
        with engine_of(self.net.gateway_app).connect() as conn:
            rows = conn.execute(sa.text("SELECT body FROM gw_notifications")).scalars().all()
        bodies = [json.loads(row) for row in rows]
        return next(b for b in bodies if b["notification"]["paymentRequestId"] == request_id)

    def forwarded_pay(self, request_id: str) -> dict[str, Any]:
        """The sealed pay the gateway forwarded to the wallet for ``request_id`` (as it saw it)."""
        assert self.net.router.seen is not None
        for url, request, _ in self.net.router.seen:
            if url.endswith(WALLET_PAY_PATH) and WALLET_AGENT in url:
                body: dict[str, Any] = json.loads(request)
                if body.get("acquirerPaymentRequestId") == request_id:
                    return body
        raise AssertionError("no such forwarded pay")


@pytest.fixture
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNetwork]:
    network = build(tmp_path_factory.mktemp("net"))
    network.router.seen = []
    trap: list[bytes] = []

    async def steal(request: Request) -> JSONResponse:
        trap.append(await request.body())
        return JSONResponse({"result": {"resultCode": "SUCCESS", "resultStatus": "S"}})

    network.router.add(EVIL, Starlette(routes=[Route("/{path:path}", steal, methods=["POST"])]))
    network.trap = trap  # type: ignore[attr-defined]
    yield network
    assert not trap, "an agent sent something to the operator's host"
    assert not leaked(network), "a payer's value crossed the network in clear"


def leaked(net: LocalNetwork) -> list[str]:
    """The payer's values found in clear in any message to or from the gateway."""
    assert net.router.seen is not None
    found = []
    for url, request, answer in net.router.seen:
        if not crosses_the_operator(url):  # a partner and its own systems: clear is their business
            continue
        text = (request + answer).decode("utf-8", "replace")
        found += [value for value in PERSONAL if value in text]
    return found


def crosses_the_operator(url: str) -> bool:
    """A message to or from the gateway: its own URLs and the agents' gateway-facing paths."""
    target = httpx.URL(url)
    return (
        target.host in ("gateway.test", EVIL)
        or target.path == NOTIFY_AGENT_PATH
        or (target.host == WALLET_AGENT and target.path in WALLET_PATHS)
    )


def paid(net: LocalNetwork, request_id: str, value: int = 500) -> None:
    body = pay_body(request_id, value)
    body["paymentNotifyUrl"] = "http://a1-backend.test/acquirer/notify"
    assert run(net.sdk(PAY_PATH, body))["result"]["resultCode"] == "SUCCESS"


# --- 1. No decryption oracle at the acquirer's agent -------------------------------------------


def test_a_notification_goes_only_where_the_merchant_said(net: LocalNetwork) -> None:
    operator = MaliciousGateway(net)
    paid(net, "mo-redirect")
    notification = operator.stored_notification("mo-redirect")
    redirected = {**notification, "paymentNotifyUrl": f"http://{EVIL}/steal"}
    assert (
        run(operator.send(ACQUIRER_AGENT, NOTIFY_AGENT_PATH, redirected))["result"]["resultCode"] == "SUCCESS"
    )
    assert net.notifications.deliveries() == 1  # to the merchant's own URL, not the operator's


def test_a_notification_is_opened_and_delivered_at_most_once(net: LocalNetwork) -> None:
    operator = MaliciousGateway(net)
    paid(net, "mo-once")
    notification = operator.stored_notification("mo-once")
    for _ in range(3):
        assert (
            run(operator.send(ACQUIRER_AGENT, NOTIFY_AGENT_PATH, notification))["result"]["resultStatus"]
            == "S"
        )
    assert net.notifications.deliveries() == 1


def test_a_forged_context_opens_nothing(net: LocalNetwork) -> None:
    """A notification about a payment this agent never forwarded, carrying a real envelope."""
    operator = MaliciousGateway(net)
    paid(net, "mo-real")
    real = operator.stored_notification("mo-real")
    forged = {**real, "notification": {**real["notification"], "paymentRequestId": "never-forwarded"}}
    answer = run(operator.send(ACQUIRER_AGENT, NOTIFY_AGENT_PATH, forged))
    assert answer["result"]["resultCode"] == "ORDER_NOT_EXIST"
    assert net.notifications.deliveries() == 0


def test_a_foreign_envelope_does_not_open(net: LocalNetwork) -> None:
    """Payment B's sealed customerId in payment A's notification: bound to B, it opens for no A."""
    operator = MaliciousGateway(net)
    paid(net, "mo-a")
    paid(net, "mo-b")
    a, b = operator.stored_notification("mo-a"), operator.stored_notification("mo-b")
    swapped = {**a, "notification": {**a["notification"], "customerId": b["notification"]["customerId"]}}
    assert (
        run(operator.send(ACQUIRER_AGENT, NOTIFY_AGENT_PATH, swapped))["result"]["resultCode"]
        == "PARAM_ILLEGAL"
    )
    assert net.notifications.deliveries() == 0


def test_an_answer_about_another_payment_is_not_opened(net: LocalNetwork) -> None:
    """The gateway answers the SDK's inquiry about A with B's answer: the agent treats it as none."""
    paid(net, "mo-asked")
    paid(net, "mo-other")
    inner = net.router.apps["gateway.test"]

    class AnswerAboutAnother(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path == INQUIRY_PATH:
                body = json.loads(request.content) | {"paymentRequestId": "mo-other"}
                payload = encode(body)
                headers = dict(request.headers) | {"content-length": str(len(payload))}
                request = httpx.Request("POST", request.url, headers=headers, content=payload)
            return await inner.handle_async_request(request)

    net.router.apps["gateway.test"] = AnswerAboutAnother()  # type: ignore[assignment]
    answer = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "mo-asked"}))
    assert answer["result"]["resultStatus"] == "U" and "customerId" not in answer


# --- 3. Answers bound to their request ----------------------------------------------------------


def test_a_signed_refusal_of_a_stranger_is_not_an_answer_to_the_gateway(net: LocalNetwork) -> None:
    """An on-path party gets a signed F from the wallet's agent by sending it garbage, and returns
    it as the answer to a real pay that the wallet executed: the gateway must not record FAIL."""
    before = net.wallet_book.balance(PAYER.customer_id)
    agent = net.router.apps[WALLET_AGENT]

    async def signed_refusal() -> httpx.Response:
        async with httpx.AsyncClient(transport=agent) as client:
            return await client.post(f"http://{WALLET_AGENT}{WALLET_PAY_PATH}", content=b"{}")

    refusal = run(signed_refusal())
    assert json.loads(refusal.content)["result"]["resultStatus"] == "F"

    class OnPath(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            real = await agent.handle_async_request(request)  # the wallet debits the payer
            if request.url.path != WALLET_PAY_PATH:
                return real
            return httpx.Response(200, headers=refusal.headers, content=refusal.content)

    net.router.apps[WALLET_AGENT] = OnPath()  # type: ignore[assignment]
    answer = run(net.sdk(PAY_PATH, pay_body("mo-unbound", 700)))
    assert answer["result"]["resultStatus"] == "U"  # unknown, not a FAIL while the payer paid
    net.router.apps[WALLET_AGENT] = agent
    assert run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "mo-unbound"}))["paymentStatus"] == "SUCCESS"
    debited = net.wallet_book.balance(PAYER.customer_id)
    assert debited < before  # paid once, and the books say SUCCESS: nothing lost
    run(net.sdk(PAY_PATH, pay_body("mo-unbound", 700)))  # the merchant retries: the same payment
    assert net.wallet_book.balance(PAYER.customer_id) == debited


# --- 4. Single use of a seal context ------------------------------------------------------------


def test_a_sealed_payment_code_replayed_under_a_new_payment_debits_nothing(net: LocalNetwork) -> None:
    operator = MaliciousGateway(net)
    paid(net, "mo-replayed", 800)
    after_first = net.wallet_book.balance(PAYER.customer_id)
    forwarded = operator.forwarded_pay("mo-replayed")
    for n in range(3):
        replay = {**forwarded, "paymentRequestId": f"GW-REPLAY-{n}"}
        answer = run(operator.send(WALLET_AGENT, WALLET_PAY_PATH, replay))
        assert answer["result"]["resultCode"] == "REPEAT_REQ_INCONSISTENT"
        assert "customerId" not in answer
    assert net.wallet_book.balance(PAYER.customer_id) == after_first


def test_the_same_pay_again_is_the_same_payment(net: LocalNetwork) -> None:
    """The gateway's own retry (same payment, same context) is answered, and debits once."""
    operator = MaliciousGateway(net)
    paid(net, "mo-retried", 600)
    debited = net.wallet_book.balance(PAYER.customer_id)
    forwarded = operator.forwarded_pay("mo-retried")
    assert run(operator.send(WALLET_AGENT, WALLET_PAY_PATH, forwarded))["result"]["resultCode"] == "SUCCESS"
    assert net.wallet_book.balance(PAYER.customer_id) == debited


def test_stale_sealed_fields_are_not_opened(net: LocalNetwork) -> None:
    """Fields sealed longer ago than the freshness window (an old capture) open for nobody."""
    operator = MaliciousGateway(net)
    before = net.wallet_book.balance(PAYER.customer_id)
    wallet = net.network.partner(WALLET_ID)
    assert wallet is not None
    then = int(time.time()) - FRESH_S - 60
    body = {**pay_body("mo-stale", 500), "paymentRequestId": "GW-STALE"}
    body["paymentMethod"]["customerBelongsTo"] = WALLET_ID
    sealed, _ = seal_message(
        body, FieldPolicy.load(), wallet.keys.recipient_key, seal_context(ACQUIRER_ID, "mo-stale", then)
    )
    sealed |= {
        "acquirerId": ACQUIRER_ID,
        "acquirerPaymentRequestId": "mo-stale",
        SEALED_AT_FIELD: then,
        "payToAmount": {"currency": "KRW", "value": "500"},
    }
    answer = run(operator.send(WALLET_AGENT, WALLET_PAY_PATH, sealed))
    assert answer["result"]["resultCode"] == "PARAM_ILLEGAL"
    assert net.wallet_book.balance(PAYER.customer_id) == before


def test_an_inquiry_seals_to_the_recorded_context_not_the_named_one(net: LocalNetwork) -> None:
    """The gateway names another context for a payment's inquiry: the wallet's agent seals the
    payer's customerId under the one it recorded, which opens for that payment alone."""
    operator = MaliciousGateway(net)
    paid(net, "mo-inq")
    forwarded = operator.forwarded_pay("mo-inq")
    asked = {
        "paymentRequestId": forwarded["paymentRequestId"],
        "acquirerId": ACQUIRER_ID,
        "acquirerPaymentRequestId": "some-other-payment",
    }
    answer = run(operator.send(WALLET_AGENT, WALLET_INQUIRY_PATH, asked))
    envelope = answer["customerId"]
    acquirer_keys = KeyStore(net.root / "acquirer-agent-keys")
    recorded = seal_context(ACQUIRER_ID, "mo-inq", forwarded[SEALED_AT_FIELD])
    assert json.loads(open_field(envelope, acquirer_keys, "customerId", recorded)) == PAYER.customer_id
    with pytest.raises(Exception, match=r"does not open|invalid"):
        open_field(envelope, acquirer_keys, "customerId", seal_context(ACQUIRER_ID, "some-other-payment"))
    net.router.seen = []  # that answer was opened by the test itself, as the acquirer


def test_an_inquiry_naming_another_acquirer_is_refused(net: LocalNetwork) -> None:
    operator = MaliciousGateway(net)
    paid(net, "mo-acq")
    forwarded = operator.forwarded_pay("mo-acq")
    asked = {"paymentRequestId": forwarded["paymentRequestId"], "acquirerId": WALLET_ID}
    assert (
        run(operator.send(WALLET_AGENT, WALLET_INQUIRY_PATH, asked))["result"]["resultCode"]
        == "PARAM_ILLEGAL"
    )


# --- 5. Bounded input, before authentication ---------------------------------------------------


@pytest.mark.parametrize("host", ["gateway.test", ACQUIRER_AGENT, WALLET_AGENT])
def test_an_oversized_body_is_refused_unread(net: LocalNetwork, host: str) -> None:
    chunks_read = 0

    async def body() -> Any:
        nonlocal chunks_read
        for _ in range(256):  # 16 MiB in 64 KiB chunks
            chunks_read += 1
            yield b"x" * 65_536

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=net.router) as client:
            return await client.post(f"http://{host}{PAY_PATH}", content=body())

    assert run(post()).status_code == 413
    assert chunks_read <= 2  # refused as soon as the body passed the limit


# --- the operator's own key does not make it an agent -------------------------------------------


def test_the_gateway_cannot_sign_as_a_partner_backend(net: LocalNetwork) -> None:
    """A pay toward the wallet agent on the SDK's path, signed by the gateway: refused."""
    payload = encode(pay_body("mo-as-sdk", 100))
    keys = KeyStore(net.root / "gateway-keys")
    key, version = keys.signing_key(ED25519)
    headers = request_headers(PAY_PATH, payload, "SDK_MERCHANT_1", key, version)

    async def post() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=net.router) as client:
            response = await client.post(
                f"http://{ACQUIRER_AGENT}{PAY_PATH}", content=payload, headers=headers
            )
        return dict(json.loads(response.content))

    assert run(post())["result"]["resultCode"] in ("KEY_NOT_FOUND", "INVALID_SIGNATURE")
