"""Key stores on disk: layout and permissions, reload, rotation, tampering, bundles."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from blindgate.crypto import (
    ED25519,
    KINDS,
    MLKEM768_X25519,
    RSA256,
    X25519,
    KeyStore,
    KeyStoreError,
    PublicBundle,
    SealedValueInvalid,
    UnknownKey,
    open_field,
    seal_field,
    sign_message,
    verify_message,
)

FIELD, PAYMENT = "buyer.buyerName.fullName", "pay-7"
MESSAGE = ("POST", "/aps/api/v1/payments/pay", "GW", "2026-11-24T16:00:00Z", "{}")


def test_layout_and_permissions(fresh_store: KeyStore) -> None:
    root = fresh_store.directory
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for kind in KINDS:
        assert stat.S_IMODE((root / kind).stat().st_mode) == 0o700
        key_file = root / kind / "v1.json"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert json.loads(key_file.read_text())["kind"] == kind
    assert json.loads((root / "party.json").read_text())["party_id"] == "acq-1"
    assert not list(root.rglob("*.tmp"))


def test_reload_gives_the_same_keys(fresh_store: KeyStore) -> None:
    again = KeyStore(fresh_store.directory)
    assert again.public_bundle() == fresh_store.public_bundle()
    assert again.pseudonym("risk", "c") == fresh_store.pseudonym("risk", "c")
    envelope = seal_field(b"v", fresh_store.recipient_key(), FIELD, PAYMENT)
    assert open_field(envelope, again, FIELD, PAYMENT) == b"v"


def test_bundle_has_no_private_material(fresh_store: KeyStore) -> None:
    text = json.dumps(fresh_store.public_bundle())
    for kind in KINDS:
        private = json.loads((fresh_store.directory / kind / "v1.json").read_text())["private"]
        assert private not in text and private[:16] not in text


def test_create_refuses_an_existing_store(fresh_store: KeyStore) -> None:
    before = fresh_store.public_bundle()
    with pytest.raises(KeyStoreError):
        KeyStore.create(fresh_store.directory, "acq-1")
    assert KeyStore(fresh_store.directory).public_bundle() == before


def test_create_refuses_a_non_empty_directory_and_accepts_an_empty_one(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "seal").mkdir()
    with pytest.raises(KeyStoreError, match="not empty"):
        KeyStore.create(tmp_path / "half", "p")
    (tmp_path / "empty").mkdir()
    assert KeyStore.create(tmp_path / "empty", "p").party_id == "p"


@pytest.mark.parametrize("party", ["", "a.b", "a b", "x" * 65])
def test_create_refuses_bad_party_ids(tmp_path: Path, party: str) -> None:
    with pytest.raises(ValueError):
        KeyStore.create(tmp_path / "s", party)
    assert not (tmp_path / "s").exists()


def test_seal_rotation_keeps_old_envelopes_openable(fresh_store: KeyStore) -> None:
    old = seal_field(b"sealed to v1", fresh_store.recipient_key(), FIELD, PAYMENT)
    assert fresh_store.rotate("seal") == 2
    assert fresh_store.recipient_key().version == 2 and fresh_store.versions("seal") == [1, 2]
    new = seal_field(b"sealed to v2", fresh_store.recipient_key(), FIELD, PAYMENT)
    reloaded = KeyStore(fresh_store.directory)
    for store in (fresh_store, reloaded):
        assert open_field(old, store, FIELD, PAYMENT) == b"sealed to v1"
        assert open_field(new, store, FIELD, PAYMENT) == b"sealed to v2"


def test_rotation_can_switch_to_the_hybrid_suite(fresh_store: KeyStore) -> None:
    old = seal_field(b"classical", fresh_store.recipient_key(), FIELD, PAYMENT)
    fresh_store.rotate("seal", suite=MLKEM768_X25519)
    recipient = fresh_store.recipient_key()
    assert recipient.suite == MLKEM768_X25519
    new = seal_field(b"post-quantum", recipient, FIELD, PAYMENT)
    assert ".mlkem768x25519." in new
    assert open_field(new, fresh_store, FIELD, PAYMENT) == b"post-quantum"
    assert open_field(old, fresh_store, FIELD, PAYMENT) == b"classical"
    fresh_store.rotate("seal")  # the suite carries over
    assert fresh_store.recipient_key().suite == MLKEM768_X25519
    assert KeyStore(fresh_store.directory).recipient_key().suite == MLKEM768_X25519
    assert fresh_store.opening_key("acq-1", 1).suite == X25519


def test_a_running_store_opens_what_was_sealed_after_another_process_rotated(fresh_store: KeyStore) -> None:
    other_process = KeyStore(fresh_store.directory)
    other_process.rotate("seal")
    envelope = seal_field(b"v", other_process.recipient_key(), FIELD, PAYMENT)
    assert open_field(envelope, fresh_store, FIELD, PAYMENT) == b"v"


def test_concurrent_rotations_cannot_overwrite_a_version(fresh_store: KeyStore) -> None:
    stale = KeyStore(fresh_store.directory)
    fresh_store.rotate("ed25519")
    written = (fresh_store.directory / "ed25519" / "v2.json").read_text()
    with pytest.raises(KeyStoreError, match="already exists"):
        stale.rotate("ed25519")
    assert (fresh_store.directory / "ed25519" / "v2.json").read_text() == written
    assert not list(fresh_store.directory.rglob("*.tmp"))


def test_signing_key_rotation_and_the_bundle(fresh_store: KeyStore) -> None:
    old_key, old_version = fresh_store.signing_key(ED25519)
    old_header = sign_message(old_key, *MESSAGE, key_version=old_version)
    assert fresh_store.rotate("ed25519") == 2
    new_key, new_version = fresh_store.signing_key(ED25519)
    assert new_version == 2 and new_key is not old_key
    bundle = PublicBundle.from_json(json.loads(json.dumps(fresh_store.public_bundle())))
    assert fresh_store.public_bundle()["ed25519"]["current"] == 2
    # A peer with the new bundle still verifies a message signed just before the rotation.
    verify_message(bundle.verifying_key(ED25519, 1), old_header, *MESSAGE)
    verify_message(bundle.verifying_key(ED25519, 2), sign_message(new_key, *MESSAGE, key_version=2), *MESSAGE)
    with pytest.raises(UnknownKey):
        bundle.verifying_key(ED25519, 3)
    with pytest.raises(UnknownKey):
        bundle.verifying_key("HS256", 1)
    rsa_key, _ = fresh_store.signing_key(RSA256, 1)
    verify_message(bundle.verifying_key(RSA256, 1), sign_message(rsa_key, *MESSAGE), *MESSAGE)


def test_pseudonym_rotation_keeps_the_old_key(fresh_store: KeyStore) -> None:
    before = fresh_store.pseudonym("risk", "c1")
    fresh_store.rotate("pseudonym")
    assert fresh_store.pseudonym("risk", "c1") != before
    assert fresh_store.pseudonym_key(1) != fresh_store.pseudonym_key()


def test_unknown_versions_and_kinds(fresh_store: KeyStore) -> None:
    with pytest.raises(UnknownKey):
        fresh_store.opening_key("acq-1", 2)
    with pytest.raises(UnknownKey):
        fresh_store.opening_key("wallet-a", 1)
    with pytest.raises(UnknownKey):
        fresh_store.rsa_key(5)
    with pytest.raises(ValueError):
        fresh_store.rotate("aes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fresh_store.rotate("rsa", suite=X25519)
    with pytest.raises(ValueError):
        fresh_store.signing_key("HS256")


def test_missing_or_damaged_stores_are_refused(fresh_store: KeyStore, tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="missing"):
        KeyStore(tmp_path / "nowhere")
    root = fresh_store.directory
    seal_file = root / "seal" / "v1.json"
    record = json.loads(seal_file.read_text())

    seal_file.write_text("{not json")
    with pytest.raises(KeyStoreError, match="unreadable"):
        KeyStore(root)
    seal_file.write_text(json.dumps({**record, "version": 2}))
    with pytest.raises(KeyStoreError, match="does not match"):
        KeyStore(root)
    seal_file.write_text(json.dumps({**record, "private": record["private"][:-3]}))
    with pytest.raises(KeyStoreError, match="does not parse"):
        KeyStore(root)
    seal_file.unlink()
    with pytest.raises(KeyStoreError, match="no seal key"):
        KeyStore(root)
    (root / "party.json").write_text(json.dumps({"format": "other", "party_id": "acq-1"}))
    with pytest.raises(KeyStoreError, match="not a blindgate key store"):
        KeyStore(root)


def test_a_store_overwritten_with_other_keys_does_not_open_old_envelopes(fresh_store: KeyStore) -> None:
    envelope = seal_field(b"v", fresh_store.recipient_key(), FIELD, PAYMENT)
    imposter = KeyStore.create(fresh_store.directory.parent / "again", "acq-1")
    with pytest.raises(SealedValueInvalid):
        open_field(envelope, imposter, FIELD, PAYMENT)


def test_public_bundle_parsing_refuses_bad_input(fresh_store: KeyStore, wallet_store: KeyStore) -> None:
    good = fresh_store.public_bundle()
    for bad in [
        {},
        {**good, "format": "x"},
        {**good, "party_id": "wallet-a"},  # sealing key of another party
        {**good, "seal": wallet_store.public_bundle()["seal"]},
        {**good, "rsa": {"versions": {"1": "AAAA"}}},
        {**good, "ed25519": {"versions": {"0": good["ed25519"]["versions"]["1"]}}},
        {**good, "ed25519": {"versions": {"1": "short"}}},
        {**good, "rsa": None},
    ]:
        with pytest.raises(ValueError):
            PublicBundle.from_json(bad)


def test_signing_only_store_holds_nothing_that_opens_or_pseudonymizes(tmp_path: Path) -> None:
    gateway = KeyStore.create(tmp_path / "gateway", "gateway", signing_only=True)
    assert sorted(p.name for p in gateway.directory.iterdir()) == ["ed25519", "party.json", "rsa"]
    again = KeyStore(gateway.directory)
    assert again.kinds == ("rsa", "ed25519")
    for call in (
        again.recipient_key,
        again.pseudonym_key,
        lambda: again.opening_key("gateway", 1),
        lambda: again.rotate("seal"),
        lambda: again.pseudonym("risk", "c1"),
    ):
        with pytest.raises(UnknownKey):
            call()
    bundle_json = again.public_bundle()
    assert "seal" not in bundle_json
    bundle = PublicBundle.from_json(bundle_json)
    assert bundle.sealing_key is None
    with pytest.raises(UnknownKey):
        _ = bundle.recipient_key
    key, version = again.signing_key(ED25519)
    verify_message(bundle.verifying_key(ED25519, version), sign_message(key, *MESSAGE), *MESSAGE)
    assert again.rotate("ed25519") == 2


def test_party_file_with_bad_kinds_is_refused(fresh_store: KeyStore) -> None:
    party_file = fresh_store.directory / "party.json"
    party = json.loads(party_file.read_text())
    for kinds in [["seal", "rsa"], ["rsa", "ed25519", "aes"], "rsa"]:
        party_file.write_text(json.dumps({**party, "kinds": kinds}))
        with pytest.raises(KeyStoreError, match="kinds"):
            KeyStore(fresh_store.directory)


def test_new_keys_are_post_quantum(tmp_path: Path) -> None:
    """The hybrid ML-KEM-768+X25519 suite is the default for new keys: recorded traffic stays
    sealed against a future quantum adversary."""
    store = KeyStore.create(tmp_path / "new", "new-party")
    assert store.recipient_key().suite == MLKEM768_X25519
    envelope = seal_field(b"pq", store.recipient_key(), FIELD, PAYMENT)
    assert ".mlkem768x25519." in envelope and open_field(envelope, store, FIELD, PAYMENT) == b"pq"


def test_sealing_keys_rotate_on_schedule_and_expired_ones_are_destroyed(tmp_path: Path) -> None:
    import datetime

    store = KeyStore.create(tmp_path / "w", "w")
    old = seal_field(b"sealed long ago", store.recipient_key(), FIELD, PAYMENT)
    start = datetime.datetime.now(datetime.UTC)
    week, month = datetime.timedelta(days=7), datetime.timedelta(days=30)
    assert store.retire_seal_keys(week, month, start) == (None, [])  # young: nothing to do
    assert store.retire_seal_keys(week, month, start + week) == (2, [])  # rotated, v1 kept
    assert open_field(old, store, FIELD, PAYMENT) == b"sealed long ago"  # still in its window
    later = datetime.datetime.now(datetime.UTC) + month + week
    rotated, destroyed = store.retire_seal_keys(week, month, later)
    assert destroyed == [1] and rotated == 3 and not (store.directory / "seal" / "v1.json").exists()
    for reader in (store, KeyStore(store.directory)):  # gone in memory and on disk
        with pytest.raises(UnknownKey):
            open_field(old, reader, FIELD, PAYMENT)
    assert store.current_version("seal") == 3 and 3 in KeyStore(store.directory).versions("seal")
