"""Sealing keys expire on a schedule (issue 15): the agent rotates its own, publishes each change
to the transparency log so peers keep verifying what they seal to, never destroys the version
the network file names, and once a key is destroyed what was sealed to it no longer opens —
answered with a clear error, not a crash."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from starlette.testclient import TestClient

from blindgate.agent.app import Backend, create_acquirer_agent_app
from blindgate.agent.commands import _rotation
from blindgate.agent.journal import Journal
from blindgate.agent.rotation import BundlePublisher, RotationSchedule, SealKeyRotation
from blindgate.api.models import INQUIRY_PATH, PAY_PATH
from blindgate.crypto.errors import UnknownKey
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import RecipientKey
from blindgate.translog.entries import key_bundle
from blindgate.translog.errors import KeyRefused, LogUnavailable
from tests.gateway.harness import ACQUIRER_ID, PAYER, SDK_CLIENT, build, pay_body, run
from tests.translog.conftest import NOW_MS, make_network

DAY = timedelta(days=1)


def wallet_on_a_log(tmp_path: Path) -> tuple[Any, KeyStore, ed25519.Ed25519PrivateKey, BundlePublisher]:
    """A partners' log, the wallet WALLET9's key store and identity, and what publishes its bundles."""
    (tmp_path / "log").mkdir()
    log = make_network(tmp_path / "log")
    keys = KeyStore.create(tmp_path / "wallet", "WALLET9")
    identity = ed25519.Ed25519PrivateKey.generate()
    publisher = BundlePublisher(
        log.log, lambda entry: log.log.add([entry]), identity, clock_ms=lambda: NOW_MS - 1
    )
    return log, keys, identity, publisher


def test_a_rotation_is_published_and_peers_verify_old_and_new_until_the_old_is_destroyed(
    tmp_path: Path,
) -> None:
    log, keys, identity, publisher = wallet_on_a_log(tmp_path)
    start = datetime.now(UTC)
    clock = [start]
    schedule = RotationSchedule(rotate_after=90 * DAY, retention=400 * DAY)
    told_v1 = SealKeyRotation(keys, schedule, keep={1}, publisher=publisher, clock=lambda: clock[0])
    assert told_v1.run_once() == (None, [], None)  # the first bundle is onboarding's, not the agent's
    log.log.add([key_bundle(keys, identity, sequence=1, valid_from_ms=0)])  # onboarding
    assert told_v1.run_once() == (None, [], None)  # nothing changed, nothing published
    v1 = keys.recipient_key()

    clock[0] = start + 91 * DAY
    assert told_v1.run_once() == (2, [], 2)
    v2 = keys.recipient_key()
    peer = log.verifier("peer")
    assert peer.require_sealing_key(v1).bundle_sequence == 2  # a peer whose network file names v1
    assert peer.require_sealing_key(v2).bundle_sequence == 2  # and one whose file names v2

    clock[0] = start + 600 * DAY  # v1 is long past retention, but the network file still names it
    assert told_v1.run_once() == (3, [], 3)  # v1 stays; v2 was superseded only now
    assert keys.versions("seal") == [1, 2, 3]

    # The operator's new network file names v3; the agent restarts with it: v1 can go now.
    told_v3 = SealKeyRotation(keys, RotationSchedule(5000 * DAY, 400 * DAY), keep={3}, publisher=publisher,
                              clock=lambda: clock[0] + 401 * DAY)  # fmt: skip
    assert told_v3.run_once() == (None, [1, 2], 4)
    assert keys.versions("seal") == [3] and not (tmp_path / "wallet" / "seal" / "v1.json").exists()
    with pytest.raises(UnknownKey):
        keys.opening_key("WALLET9", 1)
    fresh = log.verifier("late-peer")
    with pytest.raises(KeyRefused, match="not in the key bundle"):
        fresh.require_sealing_key(v1)  # refused where it would be sealed, not sealed to nobody's key
    assert fresh.require_sealing_key(keys.recipient_key()).bundle_sequence == 4


def test_without_the_version_kept_a_rotation_would_destroy_the_key_peers_seal_to(tmp_path: Path) -> None:
    keys = KeyStore.create(tmp_path / "wallet", "WALLET9")
    clock = datetime.now(UTC) + 1000 * DAY
    SealKeyRotation(keys, RotationSchedule(90 * DAY, 0 * DAY), keep={1}, clock=lambda: clock).run_once()
    assert 1 in keys.versions("seal")
    SealKeyRotation(keys, RotationSchedule(90 * DAY, 0 * DAY), keep=(), clock=lambda: clock).run_once()
    assert 1 not in keys.versions("seal")


def test_a_destroyed_key_leaves_what_was_sealed_to_it_unopenable_with_a_clear_error(tmp_path: Path) -> None:
    net = build(tmp_path)
    assert net.agent_keys is not None
    acquirer_keys = net.agent_keys[ACQUIRER_ID]
    paid = run(net.sdk(PAY_PATH, pay_body("rot-1", 1000)))
    assert paid["customerId"] == PAYER.customer_id  # sealed to the acquirer's v1, opened by its agent

    # Rotate, and pass the retention window: v1 is destroyed, in the running agent too.
    rotated_at = datetime.now(UTC) + 91 * DAY
    assert acquirer_keys.retire_seal_keys(90 * DAY, 400 * DAY, rotated_at) == (2, [])
    still = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "rot-1"}))
    assert still["customerId"] == PAYER.customer_id  # superseded, not yet destroyed: still opens
    assert acquirer_keys.retire_seal_keys(5000 * DAY, 400 * DAY, rotated_at + 401 * DAY) == (None, [1])
    inquiry = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "rot-1"}))
    assert inquiry["result"] == {
        "resultCode": "KEY_NOT_FOUND",
        "resultStatus": "F",
        "resultMessage": "a sealed field names a key version this party does not hold",
    }
    assert PAYER.customer_id not in str(inquiry)


def test_the_agent_rotates_on_its_own_while_it_serves(tmp_path: Path) -> None:
    net = build(tmp_path)
    assert net.agent_keys is not None
    keys = net.agent_keys[ACQUIRER_ID]
    rotation = SealKeyRotation(
        keys, RotationSchedule(rotate_after=timedelta(0), retention=400 * DAY), keep={1}
    )
    app = create_acquirer_agent_app(
        net.network, keys, Backend(SDK_CLIENT, net.merchant_key.public_key()),
        journal=Journal(tmp_path / "journal.db"), transport=net.router, key_rotation=rotation,
    )  # fmt: skip
    with TestClient(app, base_url="https://a1-agent.test") as client:
        for _ in range(100):
            if keys.current_version("seal") == 2:
                break
            time.sleep(0.05)
        assert client.get("/health").text == "ok"
    assert keys.versions("seal") == [1, 2]


def test_the_agent_file_sets_the_schedule(tmp_path: Path) -> None:
    keys = KeyStore.create(tmp_path / "keys", "WALLET9")
    default = _rotation({}, tmp_path, keys, 1)
    assert default is not None and default.keep == {1} and default.publisher is None
    assert default.schedule == RotationSchedule(90 * DAY, 400 * DAY, 3600)
    chosen = _rotation({"key_rotation": {"rotate_days": 30, "retention_days": 60}}, tmp_path, keys, 1)
    assert chosen is not None and chosen.schedule.rotate_after == 30 * DAY
    assert _rotation({"key_rotation": None}, tmp_path, keys, 1) is None


def test_a_bundle_the_log_did_not_take_is_published_on_the_next_run(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    log = make_network(tmp_path / "log")
    keys = KeyStore.create(tmp_path / "wallet", "WALLET9")
    identity = ed25519.Ed25519PrivateKey.generate()
    log.log.add([key_bundle(keys, identity, sequence=1, valid_from_ms=0)])
    down = [True]

    def append(entry: object) -> None:
        if down[0]:
            raise LogUnavailable("the log is down (test)")
        log.log.add([entry])  # type: ignore[list-item]

    publisher = BundlePublisher(log.log, append, identity, clock_ms=lambda: NOW_MS - 1)
    later = datetime.now(UTC) + 91 * DAY
    rotation = SealKeyRotation(keys, RotationSchedule(90 * DAY, 400 * DAY), keep={1}, publisher=publisher,
                               clock=lambda: later)  # fmt: skip
    with pytest.raises(LogUnavailable):
        rotation.run_once()  # rotated on disk; the log did not take the bundle
    assert keys.current_version("seal") == 2
    down[0] = False
    assert rotation.run_once() == (None, [], 2)
    assert log.verifier("peer").require_sealing_key(keys.recipient_key()).bundle_sequence == 2


def test_peers_seal_to_the_rotated_key_through_the_log_with_the_old_network_file(tmp_path: Path) -> None:
    """The operator's network file still names v1; the log carries the wallet's rotation to v2."""
    log, keys, identity, publisher = wallet_on_a_log(tmp_path)
    log.log.add([key_bundle(keys, identity, sequence=1, valid_from_ms=0)])  # onboarding
    v1 = keys.recipient_key()
    peer = log.verifier("peer")
    assert peer.newest_sealing_key(v1) == v1  # nothing newer yet
    later = datetime.now(UTC) + 91 * DAY
    rotation = SealKeyRotation(keys, RotationSchedule(90 * DAY, 400 * DAY), keep={1}, publisher=publisher,
                               clock=lambda: later)  # fmt: skip
    assert rotation.run_once()[0] == 2
    v2 = keys.recipient_key()
    peer.refresh()  # the next recheck of the log's head (every recheck_after_s)
    assert peer.newest_sealing_key(v1) == v2  # sealed to v2, which the wallet opens
    assert keys.opening_key("WALLET9", 2).recipient == v2
    forged = RecipientKey.from_public_bytes(
        "WALLET9", 1, v1.suite, KeyStore.create(tmp_path / "x", "X").recipient_key().public_bytes
    )
    with pytest.raises(KeyRefused, match="substituted"):
        peer.newest_sealing_key(forged)  # a substituted key in a network file is still refused
