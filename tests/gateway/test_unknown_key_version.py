"""KEY_NOT_FOUND at the wallet's agent, end to end: the acquirer's agent seals the payer's
fields under a key version the wallet's agent does not hold (the wallet published a rotated
key its running agent never got). The acquirer sees F with the AMS code, nothing is debited,
and the ledger is clean (the pending hold voided)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sqlalchemy as sa

from blindgate import ledger
from blindgate.agent.app import Backend, create_acquirer_agent_app
from blindgate.agent.journal import Journal
from blindgate.api.models import INQUIRY_PATH, PAY_PATH
from blindgate.api.network import parse_network
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import engine_of
from blindgate.storage.schema import entries, payments
from tests.gateway.harness import PAYER, SDK_CLIENT, WALLET_ID, LocalNetwork, build, pay_body, run


def seal_to_a_version_the_wallet_agent_lacks(net: LocalNetwork) -> None:
    """Point the acquirer's agent at a network file naming the wallet's rotated key (version 2)."""
    rotated_dir = net.root / "wallet-keys-rotated"
    shutil.copytree(net.root / "wallet-agent-keys", rotated_dir)
    rotated = KeyStore(rotated_dir)
    assert rotated.rotate("seal") == 2
    assert KeyStore(net.root / "wallet-agent-keys").versions("seal") == [1]  # the agent lacks it
    document = json.loads((net.root / "network.json").read_text())
    for partner in document["partners"]:
        if partner["party_id"] == WALLET_ID:
            partner["keys"] = rotated.public_bundle()
    acquirer_keys = KeyStore(net.root / "acquirer-agent-keys")
    agent = create_acquirer_agent_app(
        parse_network(document),
        acquirer_keys,
        Backend(SDK_CLIENT, net.merchant_key.public_key()),
        journal=Journal(net.root / "acquirer-agent-journal.db"),
        transport=net.router,
    )
    net.router.add("a1-agent.test", agent)


def test_a_field_under_an_unknown_key_version_fails_cleanly(tmp_path: Path) -> None:
    net = build(tmp_path)
    assert run(net.sdk(PAY_PATH, pay_body("kv-before", 500)))["result"]["resultCode"] == "SUCCESS"
    seal_to_a_version_the_wallet_agent_lacks(net)
    before = net.wallet_book.balance(PAYER.customer_id)
    records_before = net.wallet_book.records()

    answer = run(net.sdk(PAY_PATH, pay_body("kv-new", 500)))

    assert answer["result"]["resultCode"] == "KEY_NOT_FOUND"
    assert answer["result"]["resultStatus"] == "F"
    assert net.wallet_book.balance(PAYER.customer_id) == before  # nothing debited
    assert net.wallet_book.records() == records_before  # the wallet backend was never asked
    inquiry = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "kv-new"}))
    assert (inquiry["paymentStatus"], inquiry["paymentResult"]["resultCode"]) == ("FAIL", "KEY_NOT_FOUND")
    with engine_of(net.gateway_app).connect() as conn:
        stored = conn.execute(
            sa.select(payments.c.payment_id, payments.c.status, payments.c.pseudonym).where(
                payments.c.payment_request_id == "kv-new"
            )
        ).one()
        posted = sorted(
            conn.execute(sa.select(entries.c.event_key).where(entries.c.payment_id == stored.payment_id))
            .scalars()
            .all()
        )
        report = ledger.check_ledger(conn)
    assert (stored.status, stored.pseudonym) == ("FAIL", None)
    assert posted == [f"payment:{stored.payment_id}", f"resolve:{stored.payment_id}"]  # held, voided
    assert report.ok, report.problems
