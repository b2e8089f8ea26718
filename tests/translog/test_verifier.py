"""The verifier an agent asks before sealing, played against a cheating operator."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from blindgate.crypto.sealing import RecipientKey
from blindgate.translog import entries
from blindgate.translog.errors import KeyRefused, SignatureRefused, SplitView, StateError
from blindgate.translog.heads import sign_head
from blindgate.translog.log import TransparencyLog
from blindgate.translog.store import LogStore, open_log_database
from tests.translog.conftest import NOW_MS, Network, Partner, make_network


class CountingSource:
    """A log source that counts calls: the cache must make the second question free."""

    def __init__(self, log: TransparencyLog) -> None:
        self.log, self.calls = log, 0

    def __getattr__(self, name: str) -> object:
        method = getattr(self.log, name)

        def counted(*args: object, **kwargs: object) -> object:
            self.calls += 1
            return method(*args, **kwargs)

        return counted


def _operator_key(party_id: str) -> RecipientKey:
    """The key a cheating operator puts in one partner's copy of the network file."""
    raw = x25519.X25519PrivateKey.generate().public_key().public_bytes_raw()
    return RecipientKey.from_public_bytes(party_id, 1, "x25519", raw)


def test_a_published_key_is_verified_once_then_cached(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet = partner_factory("WALLET1")
    network.log.add([wallet.bundle()])
    counting = CountingSource(network.log)
    verifier = network.verifier()
    verifier._source = counting  # the same verifier, its reads counted
    verified = verifier.require_sealing_key(wallet.store.recipient_key())
    assert (verified.partner, verified.kind, verified.version) == ("WALLET1", "seal", 1)
    calls = counting.calls
    assert calls > 0
    for _ in range(100):
        verifier.require_sealing_key(wallet.store.recipient_key())
    assert counting.calls == calls  # nothing per payment


def test_substituted_sealing_key_is_refused_before_the_first_seal(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    """The network file given to one acquirer carries the operator's key in the wallet's place."""
    wallet = partner_factory("WALLET1")
    network.log.add([wallet.bundle()])
    verifier = network.verifier()
    with pytest.raises(KeyRefused, match="differs from the key WALLET1 published in the log"):
        verifier.require_sealing_key(_operator_key("WALLET1"))
    verifier.require_sealing_key(wallet.store.recipient_key())  # the genuine one still passes


def test_a_key_never_published_is_refused(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet = partner_factory("WALLET1")
    verifier = network.verifier(refresh_on_miss_after_s=0.0)
    network.log.add([partner_factory("ACQ1").bundle()])
    with pytest.raises(KeyRefused, match="WALLET1 has published no key bundle"):
        verifier.require_sealing_key(wallet.store.recipient_key())
    network.log.add([wallet.bundle()])
    with pytest.raises(KeyRefused, match="not in the key bundle"):
        verifier.require_sealing_key(replace(wallet.store.recipient_key(), version=7))


def test_bundle_signed_by_another_identity_is_refused(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet = partner_factory("WALLET1")
    network.log.add([wallet.bundle()])
    forged = entries.key_bundle(
        wallet.store, ed25519.Ed25519PrivateKey.generate(), sequence=2, valid_from_ms=0
    )
    with pytest.raises(SignatureRefused, match="not signed by WALLET1's identity key"):
        network.log.add([forged])  # the log itself keeps strangers out ...
    network.log.store.append([forged])  # ... but the operator runs the log, and writes it anyway
    network.log.publish()
    with pytest.raises(KeyRefused, match="not signed by WALLET1's identity key"):
        network.verifier().require_sealing_key(wallet.store.recipient_key())


def test_pinned_identity_refuses_a_first_bundle_by_someone_else(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet = partner_factory("WALLET1")
    impostor = Partner(wallet.store, ed25519.Ed25519PrivateKey.generate())
    network.log.add([impostor.bundle()])  # the operator registered the wallet first, under its own identity
    verifier = network.verifier(pinned_identities={"WALLET1": wallet.identity.public_key()})
    with pytest.raises(KeyRefused, match="identity key that is not WALLET1's"):
        verifier.require_sealing_key(wallet.store.recipient_key())


def test_a_bundle_tampered_after_signing_is_refused(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet = partner_factory("WALLET1")
    bundle = wallet.bundle()
    fake = _operator_key("WALLET1")
    tampered_body = json.loads(json.dumps(bundle.body))
    tampered_body["sealing_keys"][0]["public_key"] = fake.to_json()["public_key"]
    tampered = entries.with_signatures(entries.KEY_BUNDLE, tampered_body, bundle.signatures)
    with pytest.raises(SignatureRefused, match="signature does not verify"):
        tampered.check_signatures()
    network.log.store.append([tampered])
    network.log.publish()
    with pytest.raises(KeyRefused, match="signature does not verify"):
        network.verifier().require_sealing_key(fake)


def test_rotation_and_revocation_take_effect_on_refresh(
    network: Network, partner_factory: Callable[[str], Partner], tmp_path: Path
) -> None:
    from blindgate.crypto.keystore import KeyStore

    store = KeyStore.create(tmp_path / "rotating", "WALLET2", signing_only=False)
    wallet = Partner(store, ed25519.Ed25519PrivateKey.generate())
    network.log.add([wallet.bundle()])
    old_key = store.recipient_key()
    verifier = network.verifier()
    verifier.require_sealing_key(old_key)
    store.rotate("seal")
    network.log.add([wallet.bundle(sequence=2, revoked=[("seal", 1)])])
    verifier.refresh()
    with pytest.raises(KeyRefused, match="not in the key bundle"):
        verifier.require_sealing_key(old_key)
    assert verifier.require_sealing_key(store.recipient_key()).version == 2


def test_head_without_a_trusted_witness_is_refused(
    tmp_path: Path, partner_factory: Callable[[str], Partner]
) -> None:
    network = make_network(tmp_path)
    wallet = partner_factory("WALLET1")
    lone_log = TransparencyLog(network.log.store, network.log_key, witnesses=[], clock_ms=lambda: NOW_MS)
    lone_log.add([wallet.bundle()])
    verifier = network.verifier()
    verifier._source = lone_log
    with pytest.raises(KeyRefused, match="lacks a cosignature by a trusted witness"):
        verifier.require_sealing_key(wallet.store.recipient_key())
    with pytest.raises(StateError, match="witness key is the log's own key"):
        type(verifier)(
            network.log, network.log_key.public_key(), [network.log_key.public_key()], tmp_path / "x"
        )


def test_split_view_is_detected_and_stops_sealing(
    tmp_path: Path, partner_factory: Callable[[str], Partner]
) -> None:
    """The operator keeps two logs under one key: one view with the real key, one with its own."""
    wallet, acquirer = partner_factory("WALLET1"), partner_factory("ACQ1")
    network = make_network(tmp_path)
    network.log.add([wallet.bundle(), acquirer.bundle()])
    verifier = network.verifier()
    verifier.require_sealing_key(wallet.store.recipient_key())

    # The forked view: same first entry, then another history, signed by the same log key.
    fork = TransparencyLog(LogStore(open_log_database(f"sqlite:///{tmp_path / 'fork.db'}")), network.log_key)
    fork.store.append([wallet.bundle(), partner_factory("ACQ2").bundle(), partner_factory("ACQ3").bundle()])
    forked_head = fork.publish()
    with pytest.raises(SplitView, match="cannot both be true"):
        verifier.observe_head(forked_head)
    with pytest.raises(KeyRefused, match="split view"):
        verifier.require_sealing_key(wallet.store.recipient_key())  # the cache is gone too
    alert = json.loads((tmp_path / "agent" / "alert.json").read_text())
    assert {h["size"] for h in alert["heads"]} == {2, 3}

    # The alert survives a restart; only a deliberate clear lifts it.
    restarted = network.verifier()
    with pytest.raises(KeyRefused, match="split view"):
        restarted.require_sealing_key(wallet.store.recipient_key())
    restarted.clear_alert()
    restarted.require_sealing_key(wallet.store.recipient_key())


def test_two_roots_for_one_size_is_a_split_view(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet = partner_factory("WALLET1")
    network.log.add([wallet.bundle()])
    verifier = network.verifier()
    honest = verifier.refresh()
    other = sign_head(network.log_key, honest.size, bytes(32), NOW_MS)
    with pytest.raises(SplitView):
        verifier.observe_head(other)


def test_a_rewritten_log_fails_the_consistency_check(
    tmp_path: Path, partner_factory: Callable[[str], Partner]
) -> None:
    """The operator rebuilds its log without an entry the verifier already saw under a head."""
    network = make_network(tmp_path)
    wallet, acquirer = partner_factory("WALLET1"), partner_factory("ACQ1")
    network.log.add([wallet.bundle(), acquirer.bundle()])
    verifier = network.verifier(recheck_after_s=0.0)
    verifier.require_sealing_key(wallet.store.recipient_key())
    rewritten = TransparencyLog(
        LogStore(open_log_database(f"sqlite:///{tmp_path / 'rewritten.db'}")),
        network.log_key,
        clock_ms=lambda: NOW_MS,
    )
    rewritten.store.append([acquirer.bundle(), wallet.bundle(), partner_factory("ACQ2").bundle()])
    verifier._source = rewritten
    with pytest.raises(SplitView):
        verifier.observe_head(rewritten.publish())


def test_seen_heads_survive_a_restart_and_stay_bounded(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    verifier = network.verifier(max_heads=3)
    for name in ("P1", "P2", "P3", "P4", "P5"):
        network.log.add([partner_factory(name).bundle()])
        verifier.refresh()
    saved = json.loads((network.tmp / "agent" / "heads.json").read_text())
    assert [h["size"] for h in saved["heads"]] == [3, 4, 5]
    assert network.verifier(max_heads=3)._heads[-1].size == 5


def test_a_truncated_log_fails_the_consistency_check(
    tmp_path: Path, partner_factory: Callable[[str], Partner]
) -> None:
    network = make_network(tmp_path)
    wallet, acquirer = partner_factory("WALLET1"), partner_factory("ACQ1")
    network.log.add([wallet.bundle(), acquirer.bundle()])
    verifier = network.verifier()
    verifier.refresh()
    truncated = TransparencyLog(
        LogStore(open_log_database(f"sqlite:///{tmp_path / 'truncated.db'}")),
        network.log_key,
        [network.witness],
    )
    truncated.store.append([wallet.bundle()])
    verifier._source = truncated
    with pytest.raises(SignatureRefused, match="lacks a cosignature"):
        verifier.refresh()  # the witness refused to cosign a head older than its last
    with pytest.raises(SplitView):  # and the head itself cannot be joined to the one seen before
        verifier.observe_head(truncated.latest_head())


def test_signing_keys_policies_and_network_files(
    network: Network, partner_factory: Callable[[str], Partner]
) -> None:
    wallet = partner_factory("WALLET1")
    operator = ed25519.Ed25519PrivateKey.generate()
    policy = entries.field_policy(
        "WALLET1", wallet.identity, version=3, policy=b"{}", effective_from_ms=NOW_MS
    )
    network_file = entries.network_file("GATEWAY", operator, version=7, content=b"{}", published_at_ms=NOW_MS)
    network.log.add([wallet.bundle(), policy, network_file])
    assert [
        e.type
        for _, e in (
            (i, entries.Entry.parse(d)) for i, d in network.log.entries_about("WALLET1", "field_policy")
        )
    ] == ["field_policy"]
    verifier = network.verifier()
    public = wallet.store.ed25519_key().public_key().public_bytes_raw()
    assert verifier.require_signing_key("WALLET1", "ED25519", 1, public).kind == "ED25519"
    with pytest.raises(KeyRefused, match="substituted"):
        verifier.require_signing_key("WALLET1", "ED25519", 1, bytes(32))
    forged_policy = entries.field_policy(
        "WALLET1", operator, version=4, policy=b"{}", effective_from_ms=NOW_MS
    )
    with pytest.raises(SignatureRefused):
        forged_policy.check_signatures(lambda _party: wallet.identity.public_key())
