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
from tests.vectors import load, unhex

# RFC 9180, Appendix A.1.1 (tests/vectors/rfc9180-a.1.1.json).
RFC = load("rfc9180-a.1.1")
INFO = unhex(RFC["info"])  # "Ode on a Grecian Urn"
SK_EM, ENC, SK_RM, PK_RM = (unhex(RFC[name]) for name in ("skEm", "enc", "skRm", "pkRm"))
SHARED_SECRET, KEY = unhex(RFC["shared_secret"]), unhex(RFC["key"])
BASE_NONCE, EXPORTER_SECRET = unhex(RFC["base_nonce"]), unhex(RFC["exporter_secret"])
PT = unhex(RFC["pt"])  # "Beauty is truth, truth beauty"
CT_BY_SEQUENCE = {item["sequence_number"]: unhex(item["ct"]) for item in RFC["encryptions"]}
AAD_BY_SEQUENCE = {item["sequence_number"]: unhex(item["aad"]) for item in RFC["encryptions"]}
CT_0, AAD_0 = CT_BY_SEQUENCE[0], AAD_BY_SEQUENCE[0]  # aad "Count-0"
assert sorted(CT_BY_SEQUENCE) == [0, 1, 2, 255]

KEM_ID, KDF_ID, AEAD_ID = RFC["kem_id"], RFC["kdf_id"], RFC["aead_id"]
assert (KEM_ID, KDF_ID, AEAD_ID) == (0x0020, 0x0001, 0x0001)
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
        assert context.seal(sequence, AAD_BY_SEQUENCE[sequence], PT) == ciphertext


def test_context_receiver_opens_the_vector() -> None:
    context = setup_receiver(ENC, x25519.X25519PrivateKey.from_private_bytes(SK_RM), INFO)
    for sequence, ciphertext in CT_BY_SEQUENCE.items():
        assert context.open(sequence, AAD_BY_SEQUENCE[sequence], ciphertext) == PT
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
