"""The witness refuses forks and rollbacks; receipts verify offline and refuse tampering."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.translog import canonical, entries, merkle
from blindgate.translog.errors import InvalidProof, SignatureRefused, StateError, WitnessRefused
from blindgate.translog.heads import sign_head
from blindgate.translog.receipts import receipt_file, verify_receipt
from blindgate.translog.witness import Witness
from tests.translog.conftest import NOW_MS, Network, Partner


def test_witness_cosigns_only_heads_that_extend_its_last(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    network.log.add([partner_factory("P1").bundle()])
    head2 = network.log.add([partner_factory("P2").bundle()])[1]
    assert head2.cosigners([network.witness_key.public_key()]) == {network.witness.key_id}
    witness = network.witness
    with pytest.raises(WitnessRefused, match="fork") as refused:  # same size, another root
        witness.cosign(sign_head(network.log_key, 2, bytes(32), NOW_MS), 2, [])
    with pytest.raises(WitnessRefused, match="older") as refused:
        witness.cosign(network.log.head_at(1), 0, [])  # type: ignore[arg-type]
    assert refused.value.last_size == 2
    forged = sign_head(network.log_key, 3, merkle.leaf_hash(b"x"), NOW_MS)
    with pytest.raises(WitnessRefused, match="fork"):  # a larger head it cannot be joined to
        witness.cosign(forged, 2, network.log.consistency(1, 2))
    with pytest.raises(SignatureRefused):  # a head the log never signed
        witness.cosign(sign_head(ed25519.Ed25519PrivateKey.generate(), 3, bytes(32), NOW_MS), 2, [])


def test_witness_remembers_across_restarts(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    network.log.add([partner_factory("P1").bundle()])
    network.log.add([partner_factory("P2").bundle()])
    again = Witness(network.witness_key, network.log_key.public_key(), network.tmp / "witness.json")
    assert again.last_head is not None and again.last_head.size == 2
    head1 = network.log.head_at(1)
    assert head1 is not None
    with pytest.raises(WitnessRefused, match="older"):
        again.cosign(head1, 0, [])
    with pytest.raises(StateError, match="must not be the log's key"):
        Witness(network.log_key, network.log_key.public_key(), network.tmp / "w2.json")


def _receipt(wallet: Partner, acquirer: Partner, drop: str | None = None) -> entries.Entry:
    salt = secrets.token_bytes(16)
    body = entries.receipt_body(
        run_id="run-1",
        kind="psi",
        purpose="find shared customers for a campaign",
        parties={
            wallet.party_id: wallet.identity.public_key(),
            acquirer.party_id: acquirer.identity.public_key(),
        },
        code_version="blindgate 0.1.0",
        code_digest=canonical.sha256_digest(b"code"),
        inputs={
            wallet.party_id: (1000, entries.input_commitment(salt, b"digest-a")),
            acquirer.party_id: (800, entries.input_commitment(salt, b"digest-b")),
        },
        outputs={"intersection": [wallet.party_id]},
        saw={
            wallet.party_id: [("matched customer ids", "pseudonymous data")],
            acquirer.party_id: [("intersection size", "aggregate")],
        },
        started_at_ms=NOW_MS,
        ended_at_ms=NOW_MS + 5000,
    )
    signatures = {
        p.party_id: entries.signature_for(entries.DATA_USE_RECEIPT, body, p.identity)
        for p in (wallet, acquirer)
        if p.party_id != drop
    }
    return entries.with_signatures(entries.DATA_USE_RECEIPT, body, signatures)


def test_receipt_verifies_offline_in_well_under_a_second(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet, acquirer = partner_factory("WALLET1"), partner_factory("ACQ1")
    receipt = _receipt(wallet, acquirer)
    (appended,), head = (
        network.log.add([partner_factory("P1").bundle(), receipt])[0][1:],
        network.log.latest_head(),
    )
    index, proof = network.log.inclusion(receipt.leaf_hash(), head.size)
    document = json.loads(json.dumps(receipt_file(receipt, index, head, proof)))
    started = time.perf_counter()
    assert verify_receipt(document, network.log_key.public_key(), head).entry.body["run_id"] == "run-1"
    assert time.perf_counter() - started < 1.0
    assert appended.index == index


def test_tampered_receipt_and_missing_peer_signature_are_refused(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet, acquirer = partner_factory("WALLET1"), partner_factory("ACQ1")
    with pytest.raises(SignatureRefused, match="lacks the signature of ACQ1"):
        network.log.add([_receipt(wallet, acquirer, drop="ACQ1")])
    receipt = _receipt(wallet, acquirer)
    network.log.add([receipt])
    head = network.log.latest_head()
    index, proof = network.log.inclusion(receipt.leaf_hash(), head.size)
    document = json.loads(json.dumps(receipt_file(receipt, index, head, proof)))

    tampered = json.loads(json.dumps(document))
    tampered["entry"]["body"]["inputs"][0]["rows"] = 10
    with pytest.raises(SignatureRefused, match="signature does not verify"):
        verify_receipt(tampered, network.log_key.public_key())

    unsigned_by_peer = json.loads(json.dumps(document))
    del unsigned_by_peer["entry"]["signatures"]["ACQ1"]
    with pytest.raises(SignatureRefused, match="lacks the signature of ACQ1"):
        verify_receipt(unsigned_by_peer, network.log_key.public_key())

    moved = json.loads(json.dumps(document))
    moved["index"] = index + 1
    with pytest.raises(InvalidProof):
        verify_receipt(moved, network.log_key.public_key())
    with pytest.raises(SignatureRefused, match="another log"):
        verify_receipt(document, ed25519.Ed25519PrivateKey.generate().public_key())


def test_receipt_refuses_values_that_are_not_its_kind(partner_factory: Callable[[str], Partner]) -> None:
    wallet, acquirer = partner_factory("WALLET1"), partner_factory("ACQ1")
    body = json.loads(json.dumps(_receipt(wallet, acquirer).body))
    body["saw"]["WALLET1"][0]["class"] = "everything"
    with pytest.raises(entries.MalformedEntry, match="class is one of"):
        entries.signature_for(entries.DATA_USE_RECEIPT, body, wallet.identity)
    with pytest.raises(ValueError, match="16 random bytes"):
        entries.input_commitment(b"short", b"digest")


def test_entries_have_one_byte_form(partner_factory: Callable[[str], Partner], tmp_path: Path) -> None:
    entry = partner_factory("WALLET1").bundle()
    data = entry.data()
    assert entries.Entry.parse(data) == entry
    spaced = json.dumps(json.loads(data), indent=1).encode()
    with pytest.raises(entries.MalformedEntry, match="canonical"):
        entries.Entry.parse(spaced)
    with pytest.raises(entries.MalformedEntry):
        canonical.encode({"amount": 1.5})
