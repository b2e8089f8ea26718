"""Keys and a wallet backend for the partner tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from blindgate_testbed.partners.signed_http import PartnerKeys
from blindgate_testbed.partners.wallet import WalletBook
from blindgate_testbed.population import Population, generate_population


@pytest.fixture(scope="session")
def rsa_pair() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture()
def backend_and_caller(
    rsa_pair: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> tuple[PartnerKeys, PartnerKeys]:
    """The backend's keys, and the keys of the one caller it trusts (the agent), same client id."""
    backend, caller = rsa_pair
    return (
        PartnerKeys("CLIENT_1", backend, caller.public_key()),
        PartnerKeys("CLIENT_1", caller, backend.public_key()),
    )


@pytest.fixture(scope="session")
def population() -> Population:
    return generate_population(seed=7, customers_per_wallet=12, merchants_per_acquirer=2)


@pytest.fixture()
def book(tmp_path: Path, population: Population) -> WalletBook:
    return WalletBook.create(tmp_path / "wallet.db", population.wallets[0], one_time_codes=False)
