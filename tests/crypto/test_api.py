"""The public API round trip every teammate relies on."""

from __future__ import annotations

import pytest

from blindgate.crypto import (
    KeyStore,
    PublicBundle,
    SealedValueInvalid,
    is_sealed,
    open_field,
    pseudonym,
    seal_field,
    sign_message,
    verify_message,
)


def test_seal_open_through_a_published_bundle(wallet_store: KeyStore) -> None:
    bundle = PublicBundle.from_json(wallet_store.public_bundle())
    envelope = seal_field(b"2810123456789", bundle.recipient_key, "paymentMethod.paymentMethodId", "pay-1")
    assert is_sealed(envelope) and envelope.startswith("bg1.wallet-a.1.x25519.")
    assert open_field(envelope, wallet_store, "paymentMethod.paymentMethodId", "pay-1") == b"2810123456789"
    with pytest.raises(SealedValueInvalid):
        open_field(envelope, wallet_store, "paymentMethod.paymentMethodId", "pay-2")


def test_sign_verify_both_algorithms(wallet_store: KeyStore) -> None:
    bundle = PublicBundle.from_json(wallet_store.public_bundle())
    for algorithm in ("RSA256", "ED25519"):
        key, version = wallet_store.signing_key(algorithm)
        header = sign_message(
            key, "POST", "/ams/api/v1/payments/pay", "c1", "2026-01-01T00:00:00Z", "{}", version
        )
        parsed = verify_message(
            bundle.verifying_key(algorithm, version),
            header,
            "POST",
            "/ams/api/v1/payments/pay",
            "c1",
            "2026-01-01T00:00:00Z",
            b"{}",
        )
        assert parsed.algorithm == algorithm


def test_pseudonym_is_keyed_and_stable(wallet_store: KeyStore) -> None:
    assert wallet_store.pseudonym("risk", "cust-1") == pseudonym(
        wallet_store.pseudonym_key(), "risk", "cust-1"
    )
    assert wallet_store.pseudonym("risk", "cust-1") != wallet_store.pseudonym("risk", "cust-2")
