"""The AMS ``Signature`` header: interoperability with the official SDK, and refusals."""

from __future__ import annotations

import base64
from urllib.parse import quote_plus

import pytest
from com.alipay.ams.api.tools import signature_tool as sdk  # the official SDK, unchanged
from com.alipay.ams.api.tools.webhook_tool import check_signature as sdk_check_signature
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from blindgate.crypto import (
    ED25519,
    RSA256,
    InvalidSignature,
    KeyStore,
    load_rsa_public_key,
    parse_signature_header,
    rsa_private_key_for_sdk,
    rsa_public_key_for_sdk,
    sign_message,
    verify_message,
)
from blindgate.crypto.signatures import signed_content, verify_ed25519
from tests.vectors import load, unhex

PATH = "/ams/api/v1/payments/pay"
CLIENT = "SGACQ_2026"
TIME = "2026-11-24T16:00:00+08:00"
BODY = '{"paymentRequestId":"p-1","paymentAmount":{"currency":"SGD","value":"1000"},"note":"Čaj ☕"}'
MESSAGE = ("POST", PATH, CLIENT, TIME, BODY)


@pytest.fixture(scope="module")
def rsa_key(wallet_store: KeyStore) -> rsa.RSAPrivateKey:
    return wallet_store.rsa_key()


@pytest.fixture(scope="module")
def ed_key(wallet_store: KeyStore) -> ed25519.Ed25519PrivateKey:
    return wallet_store.ed25519_key()


def test_signed_content_is_the_sdks() -> None:
    assert signed_content(*MESSAGE) == sdk.gen_sign_content(*MESSAGE).encode("utf-8")
    assert signed_content(*MESSAGE[:4], BODY.encode()) == signed_content(*MESSAGE)


def test_our_rsa_signature_is_byte_for_byte_the_sdks(rsa_key: rsa.RSAPrivateKey) -> None:
    """PKCS#1 v1.5 is deterministic, so the SDK's signature is a known answer for ours."""
    header = sign_message(rsa_key, *MESSAGE, key_version=2)
    sdk_value = sdk.sign(*MESSAGE, rsa_private_key_for_sdk(rsa_key))
    assert header == f"algorithm=RSA256,keyVersion=2,signature={sdk_value}"


def test_sdk_accepts_our_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    header = sign_message(rsa_key, *MESSAGE)
    public = rsa_public_key_for_sdk(rsa_key.public_key())
    value = header.split("signature=")[1]  # what DefaultAlipayClient does with a response header
    assert sdk.verify(*MESSAGE, value, public) is True
    assert sdk_check_signature(*MESSAGE, header, public) is True


def test_we_accept_the_sdks_signature(rsa_key: rsa.RSAPrivateKey) -> None:
    value = sdk.sign(*MESSAGE, rsa_private_key_for_sdk(rsa_key))
    header = f"algorithm=RSA256,keyVersion=1,signature={value}"  # as DefaultAlipayClient.execute sends it
    public = load_rsa_public_key(rsa_public_key_for_sdk(rsa_key.public_key()))
    parsed = verify_message(public, header, *MESSAGE)
    assert (parsed.algorithm, parsed.key_version) == (RSA256, 1)


def test_sdk_refuses_our_signature_over_another_body(rsa_key: rsa.RSAPrivateKey) -> None:
    value = sign_message(rsa_key, *MESSAGE).split("signature=")[1]
    public = rsa_public_key_for_sdk(rsa_key.public_key())
    with pytest.raises(Exception, match="Verification failed"):
        sdk.verify(*MESSAGE[:4], BODY.replace("1000", "1001"), value, public)


# RFC 8032 section 7.1, TESTS 1-3 (tests/vectors/rfc8032-7.1.json): (public key, message, signature).
RFC8032 = load("rfc8032-7.1")
RFC8032_VECTORS = [(v["public_key"], v["message"], v["signature"]) for v in RFC8032["vectors"]]
assert len(RFC8032_VECTORS) == 3


def test_ed25519_rfc8032_test_1() -> None:
    """RFC 8032 section 7.1, TEST 1: the Ed25519 we sign headers with is the RFC's."""
    key = ed25519.Ed25519PrivateKey.from_private_bytes(unhex(RFC8032["test_1_secret_key"]))
    public, message, signature = RFC8032_VECTORS[0]
    assert key.public_key().public_bytes_raw() == unhex(public)
    assert key.sign(unhex(message)) == unhex(signature)


# The order of the Ed25519 group, little-endian: S + L is the same scalar, non-canonically.
ORDER_L = 2**252 + 27742317777372353535851937790883648493


@pytest.mark.parametrize(("public", "message", "signature"), RFC8032_VECTORS)
def test_ed25519_verification_passes_rfc8032_vectors(public: str, message: str, signature: str) -> None:
    key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
    verify_ed25519(key, bytes.fromhex(signature), bytes.fromhex(message))
    flipped = bytearray(bytes.fromhex(signature))
    flipped[5] ^= 0x01
    with pytest.raises(InvalidSignature):
        verify_ed25519(key, bytes(flipped), bytes.fromhex(message))
    with pytest.raises(InvalidSignature):
        verify_ed25519(key, bytes.fromhex(signature), bytes.fromhex(message) + b"!")


def test_ed25519_verification_refuses_a_non_canonical_s() -> None:
    public, message, signature = RFC8032_VECTORS[0]
    raw = bytes.fromhex(signature)
    s = int.from_bytes(raw[32:], "little") + ORDER_L  # same signature modulo L, S >= L
    malleated = raw[:32] + s.to_bytes(32, "little")
    key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
    with pytest.raises(InvalidSignature):
        verify_ed25519(key, malleated, bytes.fromhex(message))


@pytest.mark.parametrize("length", [0, 63, 65])
def test_ed25519_verification_refuses_a_signature_of_the_wrong_length(
    ed_key: ed25519.Ed25519PrivateKey, length: int
) -> None:
    with pytest.raises(InvalidSignature):
        verify_ed25519(ed_key.public_key(), b"\x01" * length, b"message")


def test_ed25519_header_round_trip(ed_key: ed25519.Ed25519PrivateKey) -> None:
    header = sign_message(ed_key, *MESSAGE, key_version=7)
    assert header.startswith("algorithm=ED25519,keyVersion=7,signature=")
    parsed = verify_message(ed_key.public_key(), header, *MESSAGE[:4], BODY.encode())
    assert (parsed.algorithm, parsed.key_version, len(parsed.signature)) == (ED25519, 7, 64)
    assert verify_message(ed_key.public_key(), parsed, *MESSAGE) == parsed  # a parsed header is accepted too


@pytest.mark.parametrize("index", range(5))
@pytest.mark.parametrize("algorithm", [RSA256, ED25519])
def test_any_changed_part_fails(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey, algorithm: str, index: int
) -> None:
    key = rsa_key if algorithm == RSA256 else ed_key
    header = sign_message(key, *MESSAGE)
    changed = list(MESSAGE)
    changed[index] = changed[index] + "x"
    with pytest.raises(InvalidSignature):
        verify_message(key.public_key(), header, *changed)


def test_wrong_key_or_algorithm_fails(
    rsa_key: rsa.RSAPrivateKey, ed_key: ed25519.Ed25519PrivateKey, fresh_store: KeyStore
) -> None:
    with pytest.raises(InvalidSignature):
        verify_message(fresh_store.rsa_key().public_key(), sign_message(rsa_key, *MESSAGE), *MESSAGE)
    with pytest.raises(InvalidSignature):
        verify_message(fresh_store.ed25519_key().public_key(), sign_message(ed_key, *MESSAGE), *MESSAGE)
    relabelled = sign_message(ed_key, *MESSAGE).replace("ED25519", "RSA256")
    with pytest.raises(InvalidSignature):
        verify_message(ed_key.public_key(), relabelled, *MESSAGE)
    with pytest.raises(InvalidSignature):
        verify_message(rsa_key.public_key(), sign_message(ed_key, *MESSAGE), *MESSAGE)


def test_flipped_signature_bit_fails(rsa_key: rsa.RSAPrivateKey) -> None:
    parsed = parse_signature_header(sign_message(rsa_key, *MESSAGE))
    raw = bytearray(parsed.signature)
    raw[-1] ^= 1
    header = f"algorithm=RSA256,keyVersion=1,signature={quote_plus(base64.b64encode(raw).decode())}"
    with pytest.raises(InvalidSignature):
        verify_message(rsa_key.public_key(), header, *MESSAGE)


GOOD_SIG = quote_plus(base64.b64encode(b"s" * 64).decode())


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "signature=" + GOOD_SIG,  # no algorithm
        "algorithm=RSA256,keyVersion=1",  # no signature
        "algorithm=RSA256,keyVersion=1,signature=",
        "algorithm=HMAC,keyVersion=1,signature=" + GOOD_SIG,
        "algorithm=rsa256,keyVersion=1,signature=" + GOOD_SIG,
        "algorithm=RSA256,keyVersion=0,signature=" + GOOD_SIG,
        "algorithm=RSA256,keyVersion=-1,signature=" + GOOD_SIG,
        "algorithm=RSA256,keyVersion=v1,signature=" + GOOD_SIG,
        "algorithm=RSA256,keyVersion=1,keyVersion=2,signature=" + GOOD_SIG,
        "algorithm=RSA256;keyVersion=1;signature=" + GOOD_SIG,
        "algorithm=RSA256,keyVersion=1,signature=not*base64",
        "algorithm=RSA256,keyVersion=1,signature=" + GOOD_SIG + "," + "x" * 5000,
    ],
)
def test_malformed_headers_are_invalid(header: str | None) -> None:
    with pytest.raises(InvalidSignature):
        parse_signature_header(header)


def test_header_without_key_version_reads_as_1() -> None:
    assert parse_signature_header("algorithm=ED25519,signature=" + GOOD_SIG).key_version == 1


def test_sdk_key_formats(rsa_key: rsa.RSAPrivateKey) -> None:
    public = rsa_key.public_key()
    bare = rsa_public_key_for_sdk(public)
    pem = f"-----BEGIN PUBLIC KEY-----\n{bare}\n-----END PUBLIC KEY-----\n"
    for text in (bare, pem):
        assert load_rsa_public_key(text).public_numbers() == public.public_numbers()
    for bad in ("", "not base64!", base64.b64encode(b"junk").decode(), rsa_private_key_for_sdk(rsa_key)):
        with pytest.raises(ValueError):
            load_rsa_public_key(bad)


def test_text_that_is_not_unicode_is_an_invalid_signature(ed_key: ed25519.Ed25519PrivateKey) -> None:
    header = sign_message(ed_key, *MESSAGE)
    with pytest.raises(InvalidSignature):
        verify_message(ed_key.public_key(), header, "POST", PATH + "\ud800", CLIENT, TIME, BODY)


def test_sdk_client_round_trip_through_our_signatures(
    rsa_key: rsa.RSAPrivateKey, fresh_store: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`DefaultAlipayClient.execute`, unchanged, with only its transport replaced by a server
    that verifies the request with `verify_message` and signs the reply with `sign_message`."""
    from com.alipay.ams.api import default_alipay_client
    from com.alipay.ams.api.request.pay.alipay_pay_query_request import AlipayPayQueryRequest

    merchant_public = rsa_key.public_key()  # the acquirer backend's key, as its agent knows it
    agent_key = fresh_store.rsa_key()  # the agent's key, as the SDK knows it ("alipay_public_key")
    seen: list[str] = []

    def server(url: str, headers: dict[str, str], body: str) -> tuple[list[tuple[str, str]], bytes]:
        path = url.split("://", 1)[1].split("/", 1)[1]  # the SDK sends the absolute URL
        parsed = verify_message(
            merchant_public,
            headers["Signature"],
            "POST",
            "/" + path,
            headers["client-id"],
            headers["Request-Time"],
            body,
        )
        seen.append(parsed.algorithm)
        reply = '{"result":{"resultCode":"SUCCESS","resultStatus":"S","resultMessage":"success"}}'
        signature = sign_message(agent_key, "POST", "/" + path, "SGACQ_2026", TIME, reply)
        return [
            ("client-id", "SGACQ_2026"),
            ("response-time", TIME),
            ("signature", signature),
        ], reply.encode()

    monkeypatch.setattr(default_alipay_client, "do_post", server)
    client = default_alipay_client.DefaultAlipayClient(
        "https://127.0.0.2",
        "SGACQ_2026",
        rsa_private_key_for_sdk(rsa_key),
        rsa_public_key_for_sdk(agent_key.public_key()),
    )
    request = AlipayPayQueryRequest()
    request.payment_request_id = "p-1"
    assert '"SUCCESS"' in client.execute(request)
    assert seen == [RSA256]

    def forged(url: str, headers: dict[str, str], body: str) -> tuple[list[tuple[str, str]], bytes]:
        reply = b'{"result":{"resultCode":"SUCCESS","resultStatus":"S"}}'
        other = sign_message(rsa_key, "POST", "/x", "SGACQ_2026", TIME, reply.decode())  # not the agent's key
        return [("client-id", "SGACQ_2026"), ("response-time", TIME), ("signature", other)], reply

    monkeypatch.setattr(default_alipay_client, "do_post", forged)
    with pytest.raises(Exception, match="verify"):
        client.execute(request)
