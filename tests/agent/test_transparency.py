"""Agents seal only to a key the partners' transparency log vouches for.

The operator writes the network file. Given a copy in which its own sealing key stands in a
wallet's place, an acquirer's agent without the log would seal the payer's fields to the
operator, which opens them, re-seals them to the wallet, and the payment succeeds unnoticed.
With the log, the agent refuses before the first seal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.agent.app import Backend, create_acquirer_agent_app
from blindgate.agent.journal import Journal
from blindgate.api.models import PAY_PATH, WALLET_PAY_PATH
from blindgate.api.network import parse_network
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.translog import entries
from blindgate.translog.log import TransparencyLog
from blindgate.translog.store import LogStore, open_log_database
from blindgate.translog.verifier import LogVerifier
from blindgate.translog.witness import Witness
from tests.gateway.harness import (
    ACQUIRER_ID,
    GATEWAY,
    PAYER,
    SDK_CLIENT,
    WALLET_ID,
    LocalNetwork,
    build,
    pay_body,
    run,
)


class Log:
    """The partners' log (run by the network) with one independent witness, in process."""

    def __init__(self, root: Path) -> None:
        self.key, witness_key = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
        self.witness_public = witness_key.public_key()
        witness = Witness(witness_key, self.key.public_key(), root / "witness.json")
        self.log = TransparencyLog(
            LogStore(open_log_database(f"sqlite:///{root / 'log.db'}")), self.key, [witness]
        )

    def publish(
        self,
        store: KeyStore,
        identity: ed25519.Ed25519PrivateKey | None = None,
        sequence: int = 1,
        revoked: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """The partner (or the operator) signs and appends its own key bundle."""
        identity = identity or ed25519.Ed25519PrivateKey.generate()
        bundle = entries.key_bundle(store, identity, sequence=sequence, valid_from_ms=0, revoked=revoked)
        self.log.add([bundle])

    def verifier(self, state: Path) -> LogVerifier:
        return LogVerifier(self.log, self.key.public_key(), [self.witness_public], state)


@pytest.fixture
def published(tmp_path: Path) -> tuple[LocalNetwork, Log, LogVerifier]:
    log = Log(tmp_path)
    verifier = log.verifier(tmp_path / "acquirer-translog")
    net = build(tmp_path / "net", partners_log=verifier)
    for party in ("wallet-agent-keys", "acquirer-agent-keys", "gateway-keys"):
        log.publish(KeyStore(net.root / party))
    return net, log, verifier


def test_a_key_the_log_vouches_for_is_sealed_to_once_verified(
    published: tuple[LocalNetwork, Log, LogVerifier],
) -> None:
    net, _, verifier = published
    assert run(net.sdk(PAY_PATH, pay_body("tl-genuine", 500)))["result"]["resultCode"] == "SUCCESS"
    assert run(net.sdk(PAY_PATH, pay_body("tl-genuine-2", 500)))["result"]["resultCode"] == "SUCCESS"
    assert {(key.partner, key.kind) for key in verifier.verified_keys()} == {
        (WALLET_ID, "seal"),
        (ACQUIRER_ID, "seal"),
        (GATEWAY, "ED25519"),
        (GATEWAY, "RSA256"),
    }


def test_a_substituted_key_in_one_partners_copy_is_refused_before_the_first_seal(
    published: tuple[LocalNetwork, Log, LogVerifier], tmp_path: Path
) -> None:
    net, log, _ = published
    operator = KeyStore.create(tmp_path / "operator", WALLET_ID)  # the operator's own key, the wallet's name
    document = json.loads((net.root / "network.json").read_text())
    for partner in document["partners"]:
        if partner["party_id"] == WALLET_ID:
            partner["keys"] = operator.public_bundle()
    agent = create_acquirer_agent_app(
        parse_network(document),
        KeyStore(net.root / "acquirer-agent-keys"),
        Backend(SDK_CLIENT, net.merchant_key.public_key()),
        journal=Journal(tmp_path / "journal.db"),
        transport=net.router,
        partners_log=log.verifier(tmp_path / "translog"),
    )
    net.router.add("a1-agent.test", agent)
    net.router.seen = []
    before = net.wallet_book.balance(PAYER.customer_id)
    answer = run(net.sdk(PAY_PATH, pay_body("tl-substituted", 500)))
    assert answer["result"]["resultCode"] == "KEY_NOT_FOUND"
    assert not [
        url for url, _, _ in net.router.seen if "gateway.test" in url
    ]  # nothing sealed left the agent
    assert net.wallet_book.balance(PAYER.customer_id) == before


def _nothing_reached_the_gateway(net: LocalNetwork) -> bool:
    return not [url for url, _, _ in net.router.seen if "gateway.test" in url]


def test_a_gateway_key_its_operator_never_published_verifies_nothing(tmp_path: Path) -> None:
    """The network file names the gateway's keys, but the operator published no bundle for
    them: the acquirer's agent sends the gateway nothing, and the wallet's agent refuses what
    the gateway signs with them. Without the check both would take the file's word."""
    log = Log(tmp_path)
    net = build(tmp_path / "net", partners_log=log.verifier(tmp_path / "translog"))
    for party in ("wallet-agent-keys", "acquirer-agent-keys"):
        log.publish(KeyStore(net.root / party))
    net.router.seen = []
    before = net.wallet_book.balance(PAYER.customer_id)
    answer = run(net.sdk(PAY_PATH, pay_body("tl-unpublished-gateway", 500)))
    assert answer["result"]["resultCode"] == "KEY_NOT_FOUND"
    assert _nothing_reached_the_gateway(net)
    assert net.wallet_book.balance(PAYER.customer_id) == before
    # The gateway itself asks the wallet's agent to pay, signed with the unpublished key.
    path, body = WALLET_PAY_PATH, encode({"paymentRequestId": "tl-unpublished-direct"})
    gateway = KeyStore(net.root / "gateway-keys")
    headers = request_headers(path, body, GATEWAY, *gateway.signing_key(ED25519))

    async def ask_wallet_agent() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=net.router) as client:
            response = await client.post("http://w1-agent.test" + path, content=body, headers=headers)
        return dict(response.json())

    assert run(ask_wallet_agent())["result"]["resultCode"] == "KEY_NOT_FOUND"
    assert net.wallet_book.balance(PAYER.customer_id) == before


def test_a_gateway_key_its_operator_revoked_verifies_nothing(tmp_path: Path) -> None:
    """A stolen gateway key: the operator publishes a bundle that revokes it. An agent that
    checks afterwards refuses it, though the network file still lists it."""
    log = Log(tmp_path)
    net = build(tmp_path / "net", partners_log=log.verifier(tmp_path / "translog"))
    operator = ed25519.Ed25519PrivateKey.generate()
    for party in ("wallet-agent-keys", "acquirer-agent-keys"):
        log.publish(KeyStore(net.root / party))
    gateway = KeyStore(net.root / "gateway-keys")
    log.publish(gateway, operator)
    log.publish(gateway, operator, sequence=2, revoked=(("ED25519", 1), ("RSA256", 1)))
    net.router.seen = []
    answer = run(net.sdk(PAY_PATH, pay_body("tl-revoked-gateway", 500)))
    assert answer["result"]["resultCode"] == "KEY_NOT_FOUND"
    assert _nothing_reached_the_gateway(net)
