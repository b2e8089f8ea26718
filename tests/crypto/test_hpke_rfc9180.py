"""RFC 9180 Appendix A.1.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode).

`cryptography`'s single-shot HPKE API draws its own ephemeral key, so the vector's
ciphertext cannot be reproduced by encrypting. Instead this test:

1. recomputes the vector's key schedule (RFC 9180 sections 4.1 and 5.1) from the
   published secrets with HKDF/HMAC/X25519 primitives, and checks every intermediate
   value (enc, shared_secret, key, base_nonce, exporter_secret) and the seq-0
   ciphertext against the RFC, so the reference below is itself pinned to the RFC;
2. has the library's ``Suite.decrypt`` open, with the vector's recipient key and info,
   the vector's plaintext sealed under the vector's key and nonce (the single-shot API
   uses an empty aad): the library's receiver follows the RFC's key schedule exactly;
3. opens the library's own encryptions and blindgate's envelopes with the reference,
   so the sender side and blindgate's ``info`` encoding are the RFC's too;
4. checks blindgate's own encryption context (`hpke_context`, the multi-message form
   the library lacks) against the vector: sender with the vector's ephemeral key,
   receiver, and the ciphertexts of sequence numbers 0, 1, 2 and 255.
"""

from __future__ import annotations

import hmac
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from blindgate.crypto import KeyStore, RecipientKey, seal_field, seal_fields
from blindgate.crypto.encoding import b64url_decode
from blindgate.crypto.hpke_context import setup_receiver, setup_sender

# RFC 9180, Appendix A.1.1.
INFO = bytes.fromhex("4f6465206f6e2061204772656369616e2055726e")  # "Ode on a Grecian Urn"
SK_EM = bytes.fromhex("52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736")
ENC = bytes.fromhex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
SK_RM = bytes.fromhex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
PK_RM = bytes.fromhex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")
SHARED_SECRET = bytes.fromhex("fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc")
KEY = bytes.fromhex("4531685d41d65f03dc48f6b8302c05b0")
BASE_NONCE = bytes.fromhex("56d890e5accaaf011cff4b7d")
EXPORTER_SECRET = bytes.fromhex("45ff1c2e220db587171952c0592d5f5ebe103f1561a2614e38f2ffd47e99e3f8")
PT = bytes.fromhex(
    "4265617574792069732074727574682c20747275746820626561757479"
)  # "Beauty is truth, truth beauty"
AAD_0 = bytes.fromhex("436f756e742d30")  # "Count-0"
CT_0 = bytes.fromhex(
    "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"
)

CT_BY_SEQUENCE = {
    0: CT_0,
    1: bytes.fromhex(
        "af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84"
    ),
    2: bytes.fromhex(
        "498dfcabd92e8acedc281e85af1cb4e3e31c7dc394a1ca20e173cb72516491588d96a19ad4a683518973dcc180"
    ),
    255: bytes.fromhex(
        "7175db9717964058640a3a11fb9007941a5d1757fda1a6935c805c21af32505bf106deefec4a49ac38d71c9e0a"
    ),
}

KEM_ID, KDF_ID, AEAD_ID = 0x0020, 0x0001, 0x0001
SUITE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM)


# --- A reference of the RFC's key schedule, for this test only (sections 4, 4.1, 5.1). ---


def _extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.digest(salt, ikm, "sha256")


def _expand(prk: bytes, info: bytes, length: int) -> bytes:
    return HKDFExpand(hashes.SHA256(), length, info).derive(prk)


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    return _extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    return _expand(prk, struct.pack(">H", length) + b"HPKE-v1" + suite_id + label + info, length)


def reference_schedule(sk_r: bytes, enc: bytes, info: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(shared_secret, key, base_nonce, exporter_secret) of base mode, as the recipient derives them."""
    recipient = x25519.X25519PrivateKey.from_private_bytes(sk_r)
    dh = recipient.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
    kem_suite = b"KEM" + struct.pack(">H", KEM_ID)
    kem_context = enc + recipient.public_key().public_bytes_raw()
    eae_prk = _labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared_secret = _labeled_expand(kem_suite, eae_prk, b"shared_secret", kem_context, 32)
    hpke_suite = b"HPKE" + struct.pack(">HHH", KEM_ID, KDF_ID, AEAD_ID)
    psk_id_hash = _labeled_extract(hpke_suite, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(hpke_suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(hpke_suite, shared_secret, b"secret", b"")
    key = _labeled_expand(hpke_suite, secret, b"key", context, 16)
    base_nonce = _labeled_expand(hpke_suite, secret, b"base_nonce", context, 12)
    exporter_secret = _labeled_expand(hpke_suite, secret, b"exp", context, 32)
    return shared_secret, key, base_nonce, exporter_secret


def reference_open(sk_r: bytes, enc: bytes, ciphertext: bytes, info: bytes) -> bytes:
    _, key, base_nonce, _ = reference_schedule(sk_r, enc, info)
    return AESGCM(key).decrypt(base_nonce, ciphertext, b"")


# --- 1. the reference reproduces the RFC ---


def test_reference_reproduces_the_vector() -> None:
    ephemeral = x25519.X25519PrivateKey.from_private_bytes(SK_EM)
    assert ephemeral.public_key().public_bytes_raw() == ENC
    assert x25519.X25519PrivateKey.from_private_bytes(SK_RM).public_key().public_bytes_raw() == PK_RM
    assert reference_schedule(SK_RM, ENC, INFO) == (SHARED_SECRET, KEY, BASE_NONCE, EXPORTER_SECRET)
    assert AESGCM(KEY).decrypt(BASE_NONCE, CT_0, AAD_0) == PT


# --- 2. the library's receiver follows the RFC ---


def test_library_decrypts_with_the_vectors_key_schedule() -> None:
    recipient = x25519.X25519PrivateKey.from_private_bytes(SK_RM)
    single_shot = AESGCM(KEY).encrypt(BASE_NONCE, PT, b"")  # seq 0, empty aad: the single-shot form
    assert SUITE.decrypt(ENC + single_shot, recipient, info=INFO) == PT
    with pytest.raises(Exception):  # noqa: B017 - any failure will do; the point is that it does not open
        SUITE.decrypt(ENC + single_shot, recipient, info=INFO + b"!")
    with pytest.raises(Exception):  # noqa: B017
        SUITE.decrypt(ENC + CT_0, recipient, info=INFO)  # the vector's ct has aad "Count-0"


# --- 3. the library's sender, and blindgate's envelopes, follow the RFC ---


def test_library_encryption_opens_with_the_reference() -> None:
    recipient = x25519.X25519PrivateKey.from_private_bytes(SK_RM)
    sealed = SUITE.encrypt(PT, recipient.public_key(), info=INFO)
    assert len(sealed) == 32 + len(PT) + 16
    assert reference_open(SK_RM, sealed[:32], sealed[32:], INFO) == PT


def test_envelope_is_rfc9180_with_the_documented_info(wallet_store: KeyStore) -> None:
    recipient = wallet_store.recipient_key()
    envelope = seal_field(PT, recipient, "buyer.buyerPhoneNo", "pay-42")
    prefix, kid, version, suite, enc, ciphertext = envelope.split(".")
    assert (prefix, kid, version, suite) == ("bg1", "wallet-a", str(recipient.version), "x25519")
    parts = [b"blindgate/sealed-field/v1", kid.encode(), version.encode(), suite.encode()]
    parts += [b"buyer.buyerPhoneNo", b"pay-42"]
    info = b"".join(struct.pack(">H", len(part)) + part for part in parts)
    private = wallet_store.opening_key("wallet-a", recipient.version).private_bytes
    assert reference_open(private, b64url_decode(enc), b64url_decode(ciphertext), info) == PT


def test_recipient_key_from_the_vector_seals_to_the_vectors_recipient() -> None:
    recipient = RecipientKey.from_public_bytes("rfc", 1, "x25519", PK_RM)
    envelope = seal_field(b"x", recipient, "f", "c")
    _, _, _, _, enc, ciphertext = envelope.split(".")
    parts = [b"blindgate/sealed-field/v1", b"rfc", b"1", b"x25519", b"f", b"c"]
    info = b"".join(struct.pack(">H", len(part)) + part for part in parts)
    assert reference_open(SK_RM, b64url_decode(enc), b64url_decode(ciphertext), info) == b"x"


# --- 4. blindgate's encryption context ---


def test_context_sender_reproduces_the_vector() -> None:
    recipient = x25519.X25519PublicKey.from_public_bytes(PK_RM)
    ephemeral = x25519.X25519PrivateKey.from_private_bytes(SK_EM)
    enc, context = setup_sender(recipient, INFO, ephemeral=ephemeral)
    assert enc == ENC
    assert (context.key, context.base_nonce, context.exporter_secret) == (KEY, BASE_NONCE, EXPORTER_SECRET)
    for sequence, ciphertext in CT_BY_SEQUENCE.items():
        aad = f"Count-{sequence}".encode()
        assert context.seal(sequence, aad, PT) == ciphertext


def test_context_receiver_opens_the_vector() -> None:
    context = setup_receiver(ENC, x25519.X25519PrivateKey.from_private_bytes(SK_RM), INFO)
    for sequence, ciphertext in CT_BY_SEQUENCE.items():
        assert context.open(sequence, f"Count-{sequence}".encode(), ciphertext) == PT
    with pytest.raises(Exception):  # noqa: B017 - InvalidTag: wrong sequence number
        context.open(1, b"Count-1", CT_0)
    with pytest.raises(ValueError):
        setup_receiver(ENC[:31], x25519.X25519PrivateKey.from_private_bytes(SK_RM), INFO)
    with pytest.raises(ValueError):  # a small-order point gives an all-zero shared secret
        setup_receiver(bytes(32), x25519.X25519PrivateKey.from_private_bytes(SK_RM), INFO)


def test_context_sequence_zero_is_the_librarys_single_shot() -> None:
    """Sequence 0 with empty aad is what single-shot HPKE sends: the library must open ours."""
    recipient = x25519.X25519PrivateKey.from_private_bytes(SK_RM)
    enc, context = setup_sender(recipient.public_key(), INFO)
    assert SUITE.decrypt(enc + context.seal(0, b"", PT), recipient, info=INFO) == PT


def test_seal_fields_envelopes_open_with_the_reference(wallet_store: KeyStore) -> None:
    recipient = wallet_store.recipient_key()
    sealed = seal_fields({"buyer.buyerEmail": b"a@b.kr", "buyer.buyerPhoneNo": PT}, recipient, "pay-42")
    prefix, kid, version, suite, enc, sequence, ciphertext = sealed["buyer.buyerPhoneNo"].split(".")
    assert (prefix, kid, suite, sequence) == ("bg1", "wallet-a", "x25519", "1")
    parts = [b"blindgate/sealed-fields/v1", kid.encode(), version.encode(), suite.encode(), b"pay-42"]
    info = b"".join(struct.pack(">H", len(part)) + part for part in parts)
    private = wallet_store.opening_key("wallet-a", recipient.version).private_bytes
    _, key, base_nonce, _ = reference_schedule(private, b64url_decode(enc), info)
    nonce = (int.from_bytes(base_nonce, "big") ^ 1).to_bytes(12, "big")
    assert AESGCM(key).decrypt(nonce, b64url_decode(ciphertext), b"buyer.buyerPhoneNo") == PT
