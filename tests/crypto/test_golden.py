"""Golden values made once and checked in (tests/vectors/golden-*.json): what was sealed or
signed with a fixed test key must keep opening and verifying, whatever changes here."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from blindgate.crypto import (
    ED25519,
    RSA256,
    InvalidSignature,
    OpeningKey,
    SealedValueInvalid,
    UnknownKey,
    open_field,
    parse_signature_header,
    sign_message,
    verify_message,
)
from tests.vectors import load, unhex

SEALED = load("golden-sealed-envelopes")
SIGNED = load("golden-signature-header")


class _GoldenKeys:
    """The golden file's opening keys, shaped like a key store."""

    def __init__(self) -> None:
        self._keys = {}
        for item in SEALED["opening_keys"]:
            key = OpeningKey.from_private_bytes(
                item["kid"], item["version"], item["suite"], unhex(item["private_bytes"])
            )
            assert key.recipient.to_json()["public_key"] == item["public_key_b64url"]
            self._keys[(key.kid, key.version)] = key

    def opening_key(self, kid: str, version: int) -> OpeningKey:
        try:
            return self._keys[(kid, version)]
        except KeyError:
            raise UnknownKey("no such key") from None


KEYS = _GoldenKeys()


@pytest.mark.parametrize("golden", SEALED["envelopes"], ids=lambda g: f"{g['form']}:{g['field']}")
def test_golden_envelope_still_opens_to_its_value(golden: dict[str, Any]) -> None:
    opened = open_field(golden["envelope"], KEYS, golden["field"], golden["context_id"])
    assert opened == golden["plaintext_utf8"].encode()


@pytest.mark.parametrize("golden", SEALED["envelopes"], ids=lambda g: f"{g['form']}:{g['field']}")
def test_golden_envelope_moved_does_not_open(golden: dict[str, Any]) -> None:
    with pytest.raises(SealedValueInvalid):
        open_field(golden["envelope"], KEYS, golden["field"], golden["context_id"] + "-other")
    with pytest.raises(SealedValueInvalid):
        open_field(golden["envelope"], KEYS, golden["field"] + "X", golden["context_id"])


def test_the_golden_envelopes_cover_every_form() -> None:
    forms = {golden["form"] for golden in SEALED["envelopes"]}
    assert forms == {
        "seal_field, x25519",
        "seal_field, mlkem768x25519",
        "seal_fields, x25519 (one encapsulation)",
    }


def _request() -> tuple[str, str, str, str, str]:
    r = SIGNED["request"]
    return r["method"], r["path"], r["client_id"], r["request_time"], r["body"]


def _keys() -> dict[str, Any]:
    pem = SIGNED["rsa_private_key_pkcs8_pem"].encode()
    rsa_key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(unhex(SIGNED["ed25519_private_key"]))
    return {RSA256: rsa_key, ED25519: ed_key}


@pytest.mark.parametrize("algorithm", [RSA256, ED25519])
def test_golden_signature_header_is_reproduced_byte_for_byte(algorithm: str) -> None:
    # Both schemes are deterministic (PKCS#1 v1.5; Ed25519), so signing the same request with
    # the same key must give the same header: the signed bytes and the header's form are pinned.
    header = sign_message(_keys()[algorithm], *_request(), key_version=SIGNED["key_version"])
    assert header == SIGNED["headers"][algorithm]


@pytest.mark.parametrize("algorithm", [RSA256, ED25519])
def test_golden_signature_header_keeps_verifying(algorithm: str) -> None:
    public = _keys()[algorithm].public_key()
    parsed = verify_message(public, SIGNED["headers"][algorithm], *_request())
    assert (parsed.algorithm, parsed.key_version) == (algorithm, SIGNED["key_version"])
    method, path, client_id, request_time, body = _request()
    with pytest.raises(InvalidSignature):
        verify_message(
            public, SIGNED["headers"][algorithm], method, path, client_id, request_time, body + " "
        )
    assert parse_signature_header(SIGNED["headers"][algorithm]).signature
