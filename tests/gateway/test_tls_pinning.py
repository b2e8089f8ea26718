"""The gateway reaches an agent's https URL only through the certificate the network file pins."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.datastructures import Headers

from blindgate.agent.app import GatewayCaller, clients_for
from blindgate.agent.vouched import GatewayKeys
from blindgate.api.calls import CookielessClient, NoAnswer, pinned_client
from blindgate.api.models import PAY_PATH, WALLET_PAY_PATH
from blindgate.api.network import WALLET, ConfigError, Partner, parse_network
from blindgate.api.signed import digest_of_request, signed_response
from blindgate.crypto.keystore import KeyStore, PublicBundle
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.calls import PartnerCaller
from blindgate.net import free_port
from blindgate.net.tls import Identity
from blindgate_testbed.network import write_tls_certificate
from tests.gateway.harness import build
from tests.tls_server import serving_tls

HOST = "127.0.0.1"
SUCCESS = {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyStore, KeyStore]:
    root = tmp_path_factory.mktemp("keys")
    return (
        KeyStore.create(root / "gateway", "GATEWAY", signing_only=True),
        KeyStore.create(root / "wallet", "WALLET_KR"),
    )


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """Two self-signed certificates for the same address: the agent's, and an impostor's."""
    root = tmp_path_factory.mktemp("tls")
    return {name: write_tls_certificate(HOST, root / name) for name in ("agent", "impostor")}


@contextmanager
def agent_over_tls(
    answerer: KeyStore, key: Path, cert: Path, path: str = WALLET_PAY_PATH
) -> Iterator[tuple[str, list[bytes]]]:
    """A server on https://HOST:port answering every request with a SUCCESS signed by
    ``answerer`` (a wallet agent, by default); yields its URL and the bodies it received."""
    received: list[bytes] = []
    signer, version = answerer.signing_key(ED25519)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        received.append(body)
        answer = {"result": SUCCESS, "paymentRequestId": json.loads(body)["paymentRequestId"]}
        answering = digest_of_request(Headers(scope=scope), path, body)
        await signed_response(path, answer, "AGENT", signer, version, answering)(scope, receive, send)

    port = free_port(HOST)
    with serving_tls(app, HOST, port, cert, key):
        yield f"https://{HOST}:{port}", received


def call(gateway: KeyStore, wallet: KeyStore, url: str, pinned_cert: Path | None) -> dict[str, Any]:
    """One signed call, as the gateway makes it, through a client pinned to ``pinned_cert``."""
    partner = Partner(
        party_id="WALLET_KR",
        role=WALLET,
        client_id="WALLET_KR_AGENT",
        currency="KRW",
        agent_url=url,
        keys=PublicBundle.from_json(wallet.public_bundle()),
        code_prefixes=("28",),
        tls_cert=pinned_cert.read_text() if pinned_cert else None,
    )

    async def go() -> dict[str, Any]:
        # As the gateway builds them: a pinned client for a pinned agent, else the default one
        # (the system's authorities).
        pinned = pinned_client(partner.tls_cert, 1) if partner.tls_cert else None
        async with CookielessClient() as default:
            caller = PartnerCaller("GATEWAY", gateway, default, {partner.party_id: pinned} if pinned else {})
            try:
                return await caller.call(partner, WALLET_PAY_PATH, {"paymentRequestId": "BG-1"}, 5.0)
            finally:
                if pinned is not None:
                    await pinned.aclose()

    return asyncio.run(go())


def test_the_pinned_certificate_is_trusted(
    stores: tuple[KeyStore, KeyStore], certificates: dict[str, tuple[Path, Path]]
) -> None:
    key, cert = certificates["agent"]
    with agent_over_tls(stores[1], key, cert) as (url, received):
        answer = call(*stores, url, pinned_cert=cert)
    assert answer["result"] == SUCCESS and len(received) == 1


def test_the_pinned_call_goes_straight_on_aiohttp_and_stays_bounded(
    stores: tuple[KeyStore, KeyStore],
    certificates: dict[str, tuple[Path, Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a real network the signed call skips httpx's client (`AiohttpTransport.post`), with the
    same bound on what an answer may hold."""

    def through_httpx(*_: object, **__: object) -> None:
        raise AssertionError("the call went through httpx's client")

    monkeypatch.setattr(CookielessClient, "post", through_httpx)
    key, cert = certificates["agent"]
    with agent_over_tls(stores[1], key, cert) as (url, received):
        assert call(*stores, url, pinned_cert=cert)["result"] == SUCCESS and len(received) == 1

    async def huge(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(3):  # 3 MiB, in chunks, no length announced
            await send({"type": "http.response.body", "body": b"x" * 2**20, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    port = free_port(HOST)
    with serving_tls(huge, HOST, port, cert, key), pytest.raises(NoAnswer, match="ConnectError"):
        call(*stores, f"https://{HOST}:{port}", pinned_cert=cert)


@pytest.mark.parametrize(
    ("served", "pinned"),
    [("impostor", "agent"), ("agent", None)],
    ids=["another-certificate-for-the-same-address", "self-signed-without-a-pin"],
)
def test_an_agent_not_proven_by_its_pin_is_refused(
    stores: tuple[KeyStore, KeyStore],
    certificates: dict[str, tuple[Path, Path]],
    served: str,
    pinned: str | None,
) -> None:
    key, cert = certificates[served]
    with (
        agent_over_tls(stores[1], key, cert) as (url, received),
        pytest.raises(NoAnswer, match="ConnectError"),
    ):
        call(*stores, url, pinned_cert=certificates[pinned][1] if pinned else None)
    assert received == []  # the handshake failed: no request body ever left the gateway


def test_the_network_file_checks_pinned_certificates(
    tmp_path: Path, certificates: dict[str, tuple[Path, Path]]
) -> None:
    net = build(tmp_path / "net")  # wallet agent http://w1-agent.test, acquirer https://a1-agent.test
    document = json.loads((tmp_path / "net" / "network.json").read_text())
    pem = certificates["agent"][1].read_text()
    document["partners"][1]["tls_cert"] = pem
    pinned = parse_network(document).partner(document["partners"][1]["party_id"])
    assert pinned is not None and pinned.tls_cert == pem
    assert net.network.gateway.tls_cert is None
    for entry, value, words in [
        (lambda d: d["partners"][0], pem, "agent has a tls_cert but its URL is not https"),
        (lambda d: d["gateway"], pem, "gateway has a tls_cert but its URL is not https"),
        (lambda d: d["partners"][1], "not a certificate", "not a PEM certificate"),
        (lambda d: d["partners"][1], pem + pem, "exactly one certificate"),
        (lambda d: d["partners"][1], Identity.generate("a CA").cert_pem.decode(), "is a CA certificate"),
    ]:
        broken = json.loads(json.dumps(document))
        entry(broken)["tls_cert"] = value
        with pytest.raises(ConfigError, match=words):
            parse_network(broken)


def test_an_agent_reaches_the_gateway_through_its_pinned_certificate(
    tmp_path: Path, certificates: dict[str, tuple[Path, Path]]
) -> None:
    build(tmp_path / "net")
    gateway_keys = KeyStore(tmp_path / "net" / "gateway-keys")
    acquirer_keys = KeyStore(tmp_path / "net" / "acquirer-agent-keys")
    document = json.loads((tmp_path / "net" / "network.json").read_text())

    def pay_through(served: str, pinned: str) -> dict[str, Any]:
        """The agent's call to a gateway serving ``served``'s certificate, ``pinned``'s pinned."""
        key, cert = certificates[served]
        with agent_over_tls(gateway_keys, key, cert, PAY_PATH) as (url, _):
            document["gateway"].update(url=url, tls_cert=certificates[pinned][1].read_text())
            clients = clients_for(parse_network(document), None)
            assert len(clients) == 2  # the backend's, and the gateway's pinned one
            network = parse_network(document)
            gateway = GatewayCaller(
                clients[-1], network, "ACQ_SG_AGENT", acquirer_keys, GatewayKeys(network, None)
            )

            async def go() -> dict[str, Any]:
                try:
                    return await gateway.call(PAY_PATH, {"paymentRequestId": "BG-1"})
                finally:
                    for client in clients:
                        await client.aclose()

            return asyncio.run(go())

    assert pay_through("agent", pinned="agent")["result"] == SUCCESS
    with pytest.raises(NoAnswer, match="ConnectError"):
        pay_through("impostor", pinned="agent")
