"""RFC 9180 base-mode encryption contexts: many messages under one key encapsulation.

Why this exists: `cryptography` implements HPKE only as single-shot calls (one KEM
encapsulation per message). A payment carries several personal fields for the same
recipient; sealing each alone costs one X25519 key generation and two X25519 operations
per field. RFC 9180's own answer is the encryption context (section 5.2): one
encapsulation, then one AEAD call per message, each with its sequence number and its own
associated data. `cryptography` has no public context API, so this module writes the
key schedule (sections 4, 4.1, 5.1, 5.2) by hand, and only that: X25519, ML-KEM, SHA3,
HKDF and AES-GCM are `cryptography`'s and the standard library's. Two suites:

- DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM (`setup_sender`, `setup_receiver`);
  tests/crypto/test_hpke_rfc9180.py checks it against RFC 9180 Appendix A.1.1 (key,
  base_nonce, exporter secret, and the ciphertexts of sequence numbers 0, 1, 2 and 255) and
  against `cryptography`'s own single-shot HPKE;
- the hybrid MLKEM768-X25519 KEM (KEM id 0x647A: X-Wing, draft-connolly-cfrg-xwing-kem, as
  the HPKE post-quantum draft names it) / HKDF-SHA256 / AES-256-GCM (`setup_sender_hybrid`,
  `setup_receiver_hybrid`): the KEM is ML-KEM-768 and X25519 side by side, its shared secret
  X-Wing's combiner ``SHA3-256(ss_M || ss_X || ct_X || pk_X || label)``, used by the key
  schedule as it is (X-Wing is not a DHKEM: no ExtractAndExpand). This is the KEM that
  `cryptography` implements single-shot; the tests check that each side interoperates with
  it (our context's message 0 opens with `cryptography`'s single-shot decryption, and
  `cryptography`'s single-shot ciphertext opens under our receiver context), so the combiner,
  the key schedule and the encodings are the same as an independent implementation's.

Sequence numbers are explicit (the caller passes them) because envelopes travel and are
opened one by one, in any order; a sender must never use one sequence number twice under
one context, which `seal_fields` guarantees by numbering the fields of one call 0..n-1.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass, field
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from blindgate.crypto.errors import InvalidInput

KEM_ID: Final = 0x0020  # DHKEM(X25519, HKDF-SHA256)
KDF_ID: Final = 0x0001  # HKDF-SHA256
AEAD_ID: Final = 0x0001  # AES-128-GCM
N_ENC: Final = 32
N_SECRET: Final = 32
N_K: Final = 16
N_N: Final = 12
MAX_SEQUENCE: Final = 2**32  # far below the AEAD's limit; a payment has a handful of fields

_KEM_SUITE: Final = b"KEM" + struct.pack(">H", KEM_ID)
_HPKE_SUITE: Final = b"HPKE" + struct.pack(">HHH", KEM_ID, KDF_ID, AEAD_ID)
_MODE_BASE: Final = b"\x00"

HYBRID_KEM_ID: Final = 0x647A  # MLKEM768-X25519 (X-Wing)
HYBRID_AEAD_ID: Final = 0x0002  # AES-256-GCM
HYBRID_N_K: Final = 32
MLKEM768_CIPHERTEXT: Final = 1088
HYBRID_N_ENC: Final = MLKEM768_CIPHERTEXT + N_ENC  # ct_M || ct_X
_XWING_LABEL: Final = b"\\.//^\\"  # X-Wing's domain separator: the six bytes \.//^\
_HYBRID_SUITE: Final = b"HPKE" + struct.pack(">HHH", HYBRID_KEM_ID, KDF_ID, HYBRID_AEAD_ID)


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    # HKDF-Extract(salt, ikm) is HMAC-SHA256 keyed with the salt (RFC 5869 section 2.2).
    return hmac.digest(salt, b"HPKE-v1" + suite_id + label + ikm, "sha256")


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    labeled_info = struct.pack(">H", length) + b"HPKE-v1" + suite_id + label + info
    return HKDFExpand(hashes.SHA256(), length, labeled_info).derive(prk)


# Base mode has no PSK: psk_id_hash is the same for every context of a suite.
_PSK_ID_HASH: Final = {
    suite: _labeled_extract(suite, b"", b"psk_id_hash", b"") for suite in (_HPKE_SUITE, _HYBRID_SUITE)
}


@dataclass(frozen=True)
class Context:
    """An HPKE context's AEAD key and base nonce; seal/open take the sequence number."""

    key: bytes = field(repr=False)
    base_nonce: bytes
    exporter_secret: bytes = field(repr=False)
    aead: AESGCM = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aead", AESGCM(self.key))  # built once, used for every field

    def nonce(self, sequence: int) -> bytes:
        if not 0 <= sequence < MAX_SEQUENCE:
            raise InvalidInput("sequence number out of range")
        return (int.from_bytes(self.base_nonce, "big") ^ sequence).to_bytes(N_N, "big")

    def seal(self, sequence: int, aad: bytes, plaintext: bytes) -> bytes:
        return self.aead.encrypt(self.nonce(sequence), plaintext, aad)

    def open(self, sequence: int, aad: bytes, ciphertext: bytes) -> bytes:
        """Raises `cryptography.exceptions.InvalidTag` when the ciphertext does not authenticate."""
        return self.aead.decrypt(self.nonce(sequence), ciphertext, aad)


def _shared_secret(dh: bytes, enc: bytes, recipient_public: bytes) -> bytes:
    eae_prk = _labeled_extract(_KEM_SUITE, b"", b"eae_prk", dh)
    return _labeled_expand(_KEM_SUITE, eae_prk, b"shared_secret", enc + recipient_public, N_SECRET)


def _key_schedule(shared_secret: bytes, info: bytes, suite: bytes = _HPKE_SUITE, n_k: int = N_K) -> Context:
    context = _MODE_BASE + _PSK_ID_HASH[suite] + _labeled_extract(suite, b"", b"info_hash", info)
    secret = _labeled_extract(suite, shared_secret, b"secret", b"")
    return Context(
        key=_labeled_expand(suite, secret, b"key", context, n_k),
        base_nonce=_labeled_expand(suite, secret, b"base_nonce", context, N_N),
        exporter_secret=_labeled_expand(suite, secret, b"exp", context, 32),
    )


def setup_sender(
    recipient: x25519.X25519PublicKey, info: bytes, ephemeral: x25519.X25519PrivateKey | None = None
) -> tuple[bytes, Context]:
    """SetupBaseS: (enc, context). ``ephemeral`` is for known-answer tests only."""
    ephemeral = ephemeral or x25519.X25519PrivateKey.generate()
    enc = ephemeral.public_key().public_bytes_raw()
    dh = ephemeral.exchange(recipient)  # raises on an all-zero result (small-order point)
    return enc, _key_schedule(_shared_secret(dh, enc, recipient.public_bytes_raw()), info)


def setup_receiver(
    enc: bytes, recipient: x25519.X25519PrivateKey, info: bytes, recipient_public: bytes | None = None
) -> Context:
    """SetupBaseR; raises ValueError on a malformed or small-order ``enc`` (`InvalidInput` if short).

    ``recipient_public`` (the recipient's raw public key), when the caller has it, saves
    recomputing it: a scalar multiplication.
    """
    if len(enc) != N_ENC:
        raise InvalidInput("enc is 32 bytes")
    public = recipient_public or recipient.public_key().public_bytes_raw()
    dh = recipient.exchange(x25519.X25519PublicKey.from_public_bytes(enc))
    return _key_schedule(_shared_secret(dh, enc, public), info)


def _xwing_secret(ss_m: bytes, ss_x: bytes, ct_x: bytes, pk_x: bytes) -> bytes:
    return hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + _XWING_LABEL).digest()


def setup_sender_hybrid(
    pq_public: mlkem.MLKEM768PublicKey, classical_public: x25519.X25519PublicKey, info: bytes
) -> tuple[bytes, Context]:
    """SetupBaseS for MLKEM768-X25519: (enc = ct_M || ct_X, context)."""
    ss_m, ct_m = pq_public.encapsulate()
    ephemeral = x25519.X25519PrivateKey.generate()
    ct_x = ephemeral.public_key().public_bytes_raw()
    pk_x = classical_public.public_bytes_raw()
    ss_x = ephemeral.exchange(classical_public)  # raises on an all-zero result (small-order point)
    secret = _xwing_secret(ss_m, ss_x, ct_x, pk_x)
    return ct_m + ct_x, _key_schedule(secret, info, _HYBRID_SUITE, HYBRID_N_K)


def setup_receiver_hybrid(
    enc: bytes, pq_private: mlkem.MLKEM768PrivateKey, classical_private: x25519.X25519PrivateKey, info: bytes
) -> Context:
    """SetupBaseR for MLKEM768-X25519; raises ValueError on a malformed ``enc`` (`InvalidInput` if
    its length is wrong). ML-KEM decapsulation never fails: a forged ct_M yields a key that
    opens nothing (implicit rejection)."""
    if len(enc) != HYBRID_N_ENC:
        raise InvalidInput("a hybrid enc is 1,120 bytes")
    ct_m, ct_x = enc[:MLKEM768_CIPHERTEXT], enc[MLKEM768_CIPHERTEXT:]
    ss_m = pq_private.decapsulate(ct_m)
    ss_x = classical_private.exchange(x25519.X25519PublicKey.from_public_bytes(ct_x))
    pk_x = classical_private.public_key().public_bytes_raw()
    return _key_schedule(_xwing_secret(ss_m, ss_x, ct_x, pk_x), info, _HYBRID_SUITE, HYBRID_N_K)
