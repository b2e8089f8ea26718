"""Pseudonyms: a keyed, purpose-separated PRF, checked against an independent computation."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from blindgate.crypto import is_pseudonym, pseudonym
from blindgate.crypto.encoding import b64url_decode, b64url_encode

KEY = bytes(range(32))


def expected(key: bytes, purpose: str, customer_id: str) -> str:
    """The documented construction, rebuilt from `cryptography`'s HKDF and HMAC."""
    derived = HKDF(
        hashes.SHA256(), 32, salt=None, info=b"blindgate/pseudonym/v1\x00" + purpose.encode()
    ).derive(key)
    mac = hmac.HMAC(derived, hashes.SHA256())
    mac.update(customer_id.encode("utf-8"))
    return "ps_" + b64url_encode(mac.finalize())


@pytest.mark.parametrize("customer_id", ["2088000000000001", "김민준", "a" * 1024])
def test_matches_the_documented_construction(customer_id: str) -> None:
    value = pseudonym(KEY, "risk", customer_id)
    assert value == expected(KEY, "risk", customer_id)
    assert is_pseudonym(value) and len(b64url_decode(value[3:])) == 32


def test_stable_and_separated_by_customer_purpose_and_key() -> None:
    base = pseudonym(KEY, "risk", "c1")
    assert base == pseudonym(KEY, "risk", "c1")
    others = {
        pseudonym(KEY, "risk", "c2"),
        pseudonym(KEY, "marketing", "c1"),
        pseudonym(bytes(32), "risk", "c1"),
        pseudonym(KEY + b"\x00", "risk", "c1"),
    }
    assert base not in others and len(others) == 4


def test_is_not_a_plain_hash_of_the_id() -> None:
    value = pseudonym(KEY, "risk", "+6591234567")
    digest = hashlib.sha256(b"+6591234567").digest()
    assert b64url_decode(value[3:]) != digest
    assert digest.hex() not in value and b64url_encode(digest) not in value


@pytest.mark.parametrize(
    ("key", "purpose", "customer_id"),
    [
        (KEY[:31], "risk", "c1"),  # short key
        (KEY, "", "c1"),
        (KEY, "Risk", "c1"),
        (KEY, "risk purpose", "c1"),
        (KEY, "r" * 65, "c1"),
        (KEY, "risk", ""),
        (KEY, "risk", "a" * 1025),
    ],
)
def test_bad_input_is_refused(key: bytes, purpose: str, customer_id: str) -> None:
    with pytest.raises(ValueError):
        pseudonym(key, purpose, customer_id)


def test_is_pseudonym() -> None:
    assert not any(is_pseudonym(v) for v in [None, "ps_", "ps_" + "A" * 42, "PS_" + "A" * 43, 3])
