"""Agents seal only to a key the partners' transparency log vouches for.

The operator writes the network file. Given a copy in which its own sealing key stands in a
wallet's place, an acquirer's agent without the log would seal the payer's fields to the
operator, which opens them, re-seals them to the wallet, and the payment succeeds unnoticed.
With the log, the agent refuses before the first seal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.agent.app import Backend, create_acquirer_agent_app
from blindgate.agent.journal import Journal
from blindgate.api.models import PAY_PATH
from blindgate.api.network import parse_network
from blindgate.crypto.keystore import KeyStore
from blindgate.translog import entries
from blindgate.translog.log import TransparencyLog
from blindgate.translog.store import LogStore, open_log_database
from blindgate.translog.verifier import LogVerifier
from blindgate.translog.witness import Witness
from tests.gateway.harness import (
    ACQUIRER_ID,
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

    def publish(self, store: KeyStore) -> None:
        """The partner signs and appends its own key bundle."""
        self.log.add(
            [entries.key_bundle(store, ed25519.Ed25519PrivateKey.generate(), sequence=1, valid_from_ms=0)]
        )

    def verifier(self, state: Path) -> LogVerifier:
        return LogVerifier(self.log, self.key.public_key(), [self.witness_public], state)


@pytest.fixture
def published(tmp_path: Path) -> tuple[LocalNetwork, Log, LogVerifier]:
    log = Log(tmp_path)
    verifier = log.verifier(tmp_path / "acquirer-translog")
    net = build(tmp_path / "net", sealing_keys=verifier)
    for party in ("wallet-agent-keys", "acquirer-agent-keys"):
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
        sealing_keys=log.verifier(tmp_path / "translog"),
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
