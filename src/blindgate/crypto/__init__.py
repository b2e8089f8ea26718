"""Cryptography of the payment path: sealed fields, pseudonyms, signatures, key stores.

Everything here is built from vetted primitives in `cryptography` (HPKE RFC 9180,
X25519, ML-KEM-768, AES-GCM, HKDF, RSA, Ed25519) and the standard library (HMAC); no
curve, cipher or random-number code is written here. See docs/crypto.md.

- `sealing`: ``seal_field`` / ``open_field`` / ``is_sealed``, `RecipientKey`; ``seal_fields`` /
  ``open_fields`` seal a payment's fields under one HPKE encapsulation (`hpke_context`).
- `pseudonyms`: ``pseudonym(key, purpose, customer_id)``.
- `signatures`: the AMS ``Signature`` header (``RSA256``, and ``ED25519`` between agents
  and the gateway): ``sign_message`` / ``verify_message`` / ``parse_signature_header``.
- `keystore`: `KeyStore` (a party's versioned keys on disk) and `PublicBundle`.

(`group` is the ristretto255 group of the PSI toolkit and is not re-exported here.)
"""

from blindgate.crypto.errors import (
    CryptoError,
    InvalidElement,
    InvalidInput,
    InvalidSignature,
    KeyStoreError,
    SealedValueInvalid,
    UnknownKey,
)
from blindgate.crypto.keystore import KINDS, KeyKind, KeyStore, PublicBundle
from blindgate.crypto.pseudonyms import is_pseudonym, pseudonym
from blindgate.crypto.sealing import (
    DEFAULT_SUITE,
    MLKEM768_X25519,
    SUITES,
    X25519,
    OpeningKey,
    RecipientKey,
    is_sealed,
    open_field,
    open_fields,
    seal_field,
    seal_fields,
)
from blindgate.crypto.signatures import (
    ED25519,
    RSA256,
    SignatureHeader,
    load_rsa_public_key,
    parse_signature_header,
    rsa_private_key_for_sdk,
    rsa_public_key_for_sdk,
    sign_message,
    verify_message,
)

__all__ = [
    "DEFAULT_SUITE",
    "ED25519",
    "KINDS",
    "MLKEM768_X25519",
    "RSA256",
    "SUITES",
    "X25519",
    "CryptoError",
    "InvalidElement",
    "InvalidInput",
    "InvalidSignature",
    "KeyKind",
    "KeyStore",
    "KeyStoreError",
    "OpeningKey",
    "PublicBundle",
    "RecipientKey",
    "SealedValueInvalid",
    "SignatureHeader",
    "UnknownKey",
    "is_pseudonym",
    "is_sealed",
    "load_rsa_public_key",
    "open_field",
    "open_fields",
    "parse_signature_header",
    "pseudonym",
    "rsa_private_key_for_sdk",
    "rsa_public_key_for_sdk",
    "seal_field",
    "seal_fields",
    "sign_message",
    "verify_message",
]
