"""Shared pieces: a log with a witness, partners with key stores and identity keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import X25519
from blindgate.translog import entries
from blindgate.translog.log import TransparencyLog
from blindgate.translog.store import LogStore, open_log_database
from blindgate.translog.verifier import LogVerifier
from blindgate.translog.witness import Witness

NOW_MS = 1_780_000_000_000


@dataclass
class Partner:
    store: KeyStore
    identity: ed25519.Ed25519PrivateKey

    @property
    def party_id(self) -> str:
        return self.store.party_id

    def bundle(self, sequence: int = 1, **kwargs: object) -> entries.Entry:
        return entries.key_bundle(self.store, self.identity, sequence=sequence, valid_from_ms=0, **kwargs)  # type: ignore[arg-type]


@dataclass
class Network:
    log: TransparencyLog
    log_key: ed25519.Ed25519PrivateKey
    witness: Witness
    witness_key: ed25519.Ed25519PrivateKey
    tmp: Path

    def verifier(self, name: str = "agent", **kwargs: object) -> LogVerifier:
        return LogVerifier(
            self.log,
            self.log_key.public_key(),
            [self.witness_key.public_key()],
            self.tmp / name,
            clock=lambda: NOW_MS / 1000,
            **kwargs,  # type: ignore[arg-type]
        )


@pytest.fixture(scope="session")
def partner_factory(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Partner]:
    made: dict[str, Partner] = {}

    def make(party_id: str) -> Partner:
        if party_id not in made:
            directory = tmp_path_factory.mktemp("keys") / party_id
            made[party_id] = Partner(
                # Classical keys: the substitution tests forge an x25519 key of the same version.
                KeyStore.create(directory, party_id, suite=X25519), ed25519.Ed25519PrivateKey.generate()
            )
        return made[party_id]

    return make


def make_network(tmp: Path, url: str | None = None) -> Network:
    log_key, witness_key = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    witness = Witness(witness_key, log_key.public_key(), tmp / "witness.json", clock_ms=lambda: NOW_MS)
    engine = open_log_database(url or f"sqlite:///{tmp / 'log.db'}")
    log = TransparencyLog(LogStore(engine), log_key, [witness], clock_ms=lambda: NOW_MS)
    return Network(log, log_key, witness, witness_key, tmp)


@pytest.fixture
def network(tmp_path: Path) -> Network:
    return make_network(tmp_path)
