"""Key stores made once per session: RSA key generation is the slow part of a store."""

from __future__ import annotations

from pathlib import Path

import pytest

from blindgate.crypto import MLKEM768_X25519, X25519, KeyStore


@pytest.fixture(scope="session")
def wallet_store(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    # Classical on purpose: these tests check the x25519 format, its shared encapsulation and the
    # RFC 9180 reference; new keys default to the hybrid suite (`test_new_keys_are_post_quantum`).
    return KeyStore.create(tmp_path_factory.mktemp("keys") / "wallet-a", "wallet-a", suite=X25519)


@pytest.fixture(scope="session")
def hybrid_store(tmp_path_factory: pytest.TempPathFactory) -> KeyStore:
    return KeyStore.create(tmp_path_factory.mktemp("keys") / "wallet-pq", "wallet-pq", suite=MLKEM768_X25519)


@pytest.fixture()
def fresh_store(tmp_path: Path) -> KeyStore:
    return KeyStore.create(tmp_path / "acq-1", "acq-1", suite=X25519)
