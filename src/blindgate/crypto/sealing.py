"""Sealed fields: one personal value encrypted to one partner with HPKE (RFC 9180).

An acquirer's agent seals a payer's payment code, name, phone, device id... to the
wallet's public key; the gateway stores and forwards the envelope and cannot open it;
the wallet's agent opens it. The HPKE implementation is `cryptography`'s (single-shot
base mode); this module only chooses the suite, binds the context and frames the result.

Envelope, compact ASCII so it fits in any JSON string field::

    bg1.<kid>.<version>.<suite>.<b64url enc>.<b64url ciphertext>

- ``kid`` is the recipient's key id (its party id), ``version`` the key version, so a
  recipient that has rotated its keys still finds the private key that opens an old one.
- ``suite`` is ``x25519`` (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM: the
  default) or ``mlkem768x25519`` (the hybrid ML-KEM-768+X25519 KEM, HKDF-SHA256,
  AES-256-GCM: a post-quantum KEM deserves a 256-bit cipher), chosen per recipient.

Binding: HPKE ``info`` is a length-prefixed encoding of a fixed label, the kid, the
version, the suite, the field's name and the context id (the payment's id). The
single-shot API authenticates ``info`` (RFC 9180 section 8.1), so an envelope copied to
another field or another payment, or with an edited header, fails to open with
`SealedValueInvalid`, exactly as a flipped ciphertext bit does.

Several fields at once: ``seal_fields`` seals all of one payment's fields for one
recipient under a single HPKE encapsulation (an RFC 9180 encryption context, see
`hpke_context`): each field is one AES-GCM call with the field's name as associated
data and its own sequence number, so it costs a few microseconds instead of a KEM. Each
field still gets its own envelope, which carries the shared ``enc`` and its sequence
number and opens on its own with ``open_field``::

    bg1.<kid>.<version>.x25519.<b64url enc>.<sequence>.<b64url ciphertext>

Its ``info`` binds kid, version, suite and context id under another label
(``blindgate/sealed-fields/v1``), the AEAD's associated data binds the field name, so
the same moves fail as for single envelopes, and two fields of one payment cannot be
swapped. The recipient derives a context once per ``enc`` (a bounded cache).

The hybrid suite's ``enc`` is 1,120 bytes (an ML-KEM-768 ciphertext and an X25519 share),
too large to repeat in every field: its fields carry it once, in the envelope of sequence
number 0; the others carry a reference to it, ``~`` and the base64url of the first 12
bytes of its SHA-256, in its place::

    bg1.<kid>.<version>.mlkem768x25519.<b64url enc>.0.<b64url ciphertext>
    bg1.<kid>.<version>.mlkem768x25519.~<b64url ref>.<sequence>.<b64url ciphertext>

Such an envelope opens only beside the one that carries its ``enc`` — ``open_fields``, or
``open_field`` given the message's `sibling_encs` — as the fields of one payment travel
together. The reference is only a pointer: the AEAD key comes from the real ``enc``, so a
wrong or swapped one opens nothing.

What leaks: to anyone who sees an envelope (the gateway, logs), the recipient's key id
and version, the suite, and the plaintext's length (to the byte: AES-GCM does not pad);
for ``seal_fields``, also which envelopes were sealed together (they share ``enc``, or
point at it).
HPKE base mode does not authenticate the sender; the messages that carry envelopes are
signed (see `signatures`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from functools import lru_cache
from typing import Any, Final, Protocol

from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from blindgate.crypto import hpke_context
from blindgate.crypto.encoding import b64url_decode, b64url_encode
from blindgate.crypto.errors import InvalidInput, SealedValueInvalid

PREFIX: Final = "bg1"
X25519: Final = "x25519"
MLKEM768_X25519: Final = "mlkem768x25519"
DEFAULT_SUITE: Final = MLKEM768_X25519  # post-quantum for new keys: recorded traffic stays sealed

# Personal fields are short; the bound keeps a hostile envelope from costing memory or time.
MAX_PLAINTEXT_BYTES: Final = 16 * 1024
MAX_ENVELOPE_CHARS: Final = 2 * MAX_PLAINTEXT_BYTES + 4096

_SUITES: Final[dict[str, hpke.Suite]] = {
    X25519: hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM),
    MLKEM768_X25519: hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM),
}
SUITES: Final = tuple(_SUITES)
_ENC_LENGTH: Final = {
    X25519: hpke.KEM.X25519.enc_length(),
    MLKEM768_X25519: hpke.KEM.MLKEM768_X25519.enc_length(),
}
_X25519_BYTES: Final = 32
_MLKEM768_PUBLIC_BYTES: Final = 1184
_MLKEM768_SEED_BYTES: Final = 64
_INFO_LABEL: Final = b"blindgate/sealed-field/v1"
_CONTEXT_INFO_LABEL: Final = b"blindgate/sealed-fields/v1"
MAX_FIELDS_PER_CONTEXT: Final = 256
MAX_NAME_BYTES: Final = 1024

KID_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENVELOPE: Final = re.compile(
    r"bg1\.([A-Za-z0-9_-]{1,64})\.([1-9][0-9]{0,8})\.([a-z0-9]{1,32})\.(~?[A-Za-z0-9_-]+)"
    r"(?:\.(0|[1-9][0-9]{0,2}))?\.([A-Za-z0-9_-]+)"
)
_REFERENCE_CHARS: Final = 17  # "~" and the base64url of 12 bytes

PublicSealingKey = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey
PrivateSealingKey = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey


def check_suite(suite: str) -> str:
    if suite not in _SUITES:
        raise InvalidInput(f"unknown sealing suite (known: {', '.join(SUITES)})")
    return suite


def check_kid(kid: str) -> str:
    if KID_PATTERN.fullmatch(kid) is None:
        raise InvalidInput("a key id is 1 to 64 characters of A-Z a-z 0-9 _ -")
    return kid


@dataclass(frozen=True)
class RecipientKey:
    """A partner's current public sealing key, as published in its key bundle."""

    kid: str
    version: int
    suite: str
    public_bytes: bytes
    public_key: PublicSealingKey = dataclass_field(repr=False, compare=False)

    @classmethod
    def from_public_bytes(cls, kid: str, version: int, suite: str, public_bytes: bytes) -> RecipientKey:
        """Build from the raw public key (X25519: 32 bytes; hybrid: ML-KEM-768 ek || X25519)."""
        check_kid(kid)
        check_suite(suite)
        if not 1 <= version < 10**9:
            raise InvalidInput("a key version is a positive integer")
        return cls(kid, version, suite, bytes(public_bytes), _load_public(suite, public_bytes))

    def to_json(self) -> dict[str, Any]:
        return {
            "kid": self.kid,
            "version": self.version,
            "suite": self.suite,
            "public_key": b64url_encode(self.public_bytes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecipientKey:
        """Parse `to_json`'s shape; raises `InvalidInput` on anything else."""
        try:
            kid, version, suite, public = data["kid"], data["version"], data["suite"], data["public_key"]
        except (KeyError, TypeError) as exc:
            raise InvalidInput("a recipient key needs kid, version, suite and public_key") from exc
        if not (isinstance(kid, str) and type(version) is int and isinstance(suite, str)):
            raise InvalidInput("a recipient key's kid and suite are strings, its version an integer")
        if not isinstance(public, str):
            raise InvalidInput("a recipient key's public_key is base64url text")
        return cls.from_public_bytes(kid, version, suite, b64url_decode(public))


@dataclass(frozen=True)
class OpeningKey:
    """A private sealing key: what a recipient needs to open envelopes of one key version.

    ``private_bytes`` is the raw form the key store keeps (X25519: 32 bytes; hybrid: the
    64-byte ML-KEM-768 seed || the X25519 key).
    """

    kid: str
    version: int
    suite: str
    private_bytes: bytes = dataclass_field(repr=False)
    private_key: PrivateSealingKey = dataclass_field(repr=False, compare=False)
    recipient: RecipientKey = dataclass_field(compare=False)

    @classmethod
    def from_private_bytes(cls, kid: str, version: int, suite: str, private_bytes: bytes) -> OpeningKey:
        check_suite(suite)
        try:
            if suite == X25519:
                classical = x25519.X25519PrivateKey.from_private_bytes(private_bytes)
                private: PrivateSealingKey = classical
                public = classical.public_key().public_bytes_raw()
            else:
                if len(private_bytes) != _MLKEM768_SEED_BYTES + _X25519_BYTES:
                    raise InvalidInput("a hybrid private key is a 64-byte seed and 32 bytes")
                post_quantum = mlkem.MLKEM768PrivateKey.from_seed_bytes(private_bytes[:_MLKEM768_SEED_BYTES])
                classical = x25519.X25519PrivateKey.from_private_bytes(private_bytes[_MLKEM768_SEED_BYTES:])
                private = hpke.MLKEM768X25519PrivateKey(post_quantum, classical)
                public = (
                    post_quantum.public_key().public_bytes_raw() + classical.public_key().public_bytes_raw()
                )
        except Exception as exc:
            raise InvalidInput("private sealing key does not parse") from exc
        recipient = RecipientKey.from_public_bytes(kid, version, suite, public)
        return cls(kid, version, suite, bytes(private_bytes), private, recipient)


class OpeningKeys(Protocol):
    """Where `open_field` finds private keys: a `KeyStore`, or anything shaped like one."""

    def opening_key(self, kid: str, version: int) -> OpeningKey:
        """The key for (kid, version); raises `UnknownKey` when this party holds none."""
        ...


def seal_field(value: bytes, recipient: RecipientKey, field: str, context_id: str) -> str:
    """Encrypt ``value`` to ``recipient``, bound to ``field`` and ``context_id``; returns an envelope."""
    _check_plaintext(value)
    info = _info(recipient.kid, recipient.version, recipient.suite, field, context_id)
    sealed = _SUITES[recipient.suite].encrypt(bytes(value), recipient.public_key, info=info)
    enc_length = _ENC_LENGTH[recipient.suite]
    return ".".join(
        (
            PREFIX,
            recipient.kid,
            str(recipient.version),
            recipient.suite,
            b64url_encode(sealed[:enc_length]),
            b64url_encode(sealed[enc_length:]),
        )
    )


def open_field(
    envelope: str, keys: OpeningKeys, field: str, context_id: str, siblings: Mapping[str, bytes] | None = None
) -> bytes:
    """Open an envelope sealed to one of ``keys`` for this ``field`` and ``context_id``.

    Opens every form (`seal_field`'s and `seal_fields`'s); an envelope that points at its
    ``enc`` finds it in ``siblings`` (`sibling_encs` of its message). Raises
    `SealedValueInvalid` if it is malformed, tampered with or moved, and `UnknownKey` if its
    kid or version is not one this party holds.
    """
    parsed = parse_envelope(envelope)
    key = keys.opening_key(parsed.kid, parsed.version)
    if key.suite != parsed.suite:
        raise SealedValueInvalid("sealed value's suite does not match its key")
    enc = parsed.enc if parsed.reference is None else (siblings or {}).get(parsed.reference)
    if enc is None:
        raise SealedValueInvalid("sealed value opens only beside the fields it was sealed with")
    try:
        if parsed.sequence is None:
            info = _info(parsed.kid, parsed.version, parsed.suite, field, context_id)
            return _SUITES[parsed.suite].decrypt(enc + parsed.ciphertext, key.private_key, info=info)
        info = _context_info(parsed.kid, parsed.version, parsed.suite, context_id)
        context = _receiver_context(key, enc, info)
        return context.open(parsed.sequence, field.encode("utf-8"), parsed.ciphertext)
    except Exception as exc:  # InvalidTag or ValueError from the library: all mean "does not open"
        raise SealedValueInvalid("sealed value does not open: tampered, moved or not for this key") from exc


def sibling_encs(values: Iterable[object]) -> dict[str, bytes]:
    """{reference: enc} of the hybrid context envelopes among ``values`` that carry their ``enc``:
    what the fields sealed with them need to open (`open_field`'s ``siblings``)."""
    found = {}
    for value in values:
        if isinstance(value, str) and value.startswith(f"{PREFIX}.") and f".{MLKEM768_X25519}." in value:
            with contextlib.suppress(SealedValueInvalid):
                parsed = parse_envelope(value)
                if parsed.sequence is not None and parsed.reference is None:
                    found[_reference(parsed.enc)] = parsed.enc
    return found


def _reference(enc: bytes) -> str:
    return "~" + b64url_encode(hashlib.sha256(enc).digest()[:12])


def seal_fields(values: Mapping[str, bytes], recipient: RecipientKey, context_id: str) -> dict[str, str]:
    """Seal several fields of one payment to one recipient: {field name: envelope}.

    One HPKE encapsulation for all of them; each envelope opens with `open_field` under its
    own field name and ``context_id`` (a hybrid one beside the envelope that carries the
    shared ``enc``: module docstring).
    """
    if len(values) > MAX_FIELDS_PER_CONTEXT:
        raise InvalidInput(f"at most {MAX_FIELDS_PER_CONTEXT} fields are sealed together")
    for value in values.values():
        _check_plaintext(value)
    if len(values) < 2:
        return {name: seal_field(value, recipient, name, context_id) for name, value in values.items()}
    info = _context_info(recipient.kid, recipient.version, recipient.suite, context_id)
    if recipient.suite == X25519:
        assert isinstance(recipient.public_key, x25519.X25519PublicKey)
        enc, context = hpke_context.setup_sender(recipient.public_key, info)
        first = later = b64url_encode(enc)
    else:
        enc, context = hpke_context.setup_sender_hybrid(*_hybrid_public(recipient.public_bytes), info)
        first, later = b64url_encode(enc), _reference(enc)
    head = ".".join((PREFIX, recipient.kid, str(recipient.version), recipient.suite))
    sealed = {}
    for sequence, (name, value) in enumerate(values.items()):
        ciphertext = b64url_encode(context.seal(sequence, name.encode("utf-8"), bytes(value)))
        sealed[name] = f"{head}.{first if sequence == 0 else later}.{sequence}.{ciphertext}"
    return sealed


def open_fields(envelopes: Mapping[str, str], keys: OpeningKeys, context_id: str) -> dict[str, bytes]:
    """Open {field name: envelope} of one payment; raises as `open_field` does on the first failure."""
    siblings = sibling_encs(envelopes.values())
    return {
        name: open_field(envelope, keys, name, context_id, siblings) for name, envelope in envelopes.items()
    }


@dataclass(frozen=True)
class ParsedEnvelope:
    kid: str
    version: int
    suite: str
    enc: bytes  # empty where ``reference`` points at it
    sequence: int | None  # None: a single-shot envelope; a number: one message of a context
    ciphertext: bytes
    reference: str | None = None  # a hybrid context's later field: which sibling's enc it shares


def parse_envelope(envelope: str) -> ParsedEnvelope:
    """Split an envelope into its parts; checks its form, not its authenticity."""
    if not isinstance(envelope, str) or len(envelope) > MAX_ENVELOPE_CHARS:
        raise SealedValueInvalid("sealed value is malformed")
    match = _ENVELOPE.fullmatch(envelope)
    if match is None or match[3] not in _SUITES:
        raise SealedValueInvalid("sealed value is malformed")
    suite, sequence = match[3], None if match[5] is None else int(match[5])
    reference = match[4] if match[4].startswith("~") else None
    if reference is not None and (
        sequence in (None, 0) or suite == X25519 or len(reference) != _REFERENCE_CHARS
    ):
        raise SealedValueInvalid("sealed value is malformed")  # only a hybrid context's later fields point
    try:
        enc = b"" if reference is not None else b64url_decode(match[4])
        ciphertext = b64url_decode(match[6])
    except ValueError as exc:
        raise SealedValueInvalid("sealed value is malformed") from exc
    if (reference is None and len(enc) != _ENC_LENGTH[suite]) or len(ciphertext) < 16:
        raise SealedValueInvalid("sealed value is malformed")
    return ParsedEnvelope(match[1], int(match[2]), suite, enc, sequence, ciphertext, reference)


def has_envelope_form(value: object) -> bool:
    """Whether ``value`` reads as an envelope (`is_sealed` without decoding its parts): for the
    gateway's request fingerprint, which only sets sealed values aside, on every payment."""
    if not isinstance(value, str) or not value.startswith("bg1.") or len(value) > MAX_ENVELOPE_CHARS:
        return False
    match = _ENVELOPE.fullmatch(value)
    return match is not None and match[3] in _SUITES


def is_sealed(value: object) -> bool:
    """Whether ``value`` has an envelope's form (it says nothing about whether it opens)."""
    if not isinstance(value, str) or not value.startswith("bg1."):
        return False
    try:
        parse_envelope(value)
    except SealedValueInvalid:
        return False
    return True


def generate_opening_key(kid: str, version: int, suite: str = DEFAULT_SUITE) -> OpeningKey:
    """A fresh private sealing key from the operating system's CSPRNG (through `cryptography`)."""
    classical = x25519.X25519PrivateKey.generate().private_bytes_raw()
    if check_suite(suite) == X25519:
        return OpeningKey.from_private_bytes(kid, version, suite, classical)
    seed = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw()
    return OpeningKey.from_private_bytes(kid, version, suite, seed + classical)


def _load_public(suite: str, public_bytes: bytes) -> PublicSealingKey:
    try:
        if suite == X25519:
            if len(public_bytes) != _X25519_BYTES:
                raise InvalidInput("an X25519 public key is 32 bytes")
            return x25519.X25519PublicKey.from_public_bytes(public_bytes)
        if len(public_bytes) != _MLKEM768_PUBLIC_BYTES + _X25519_BYTES:
            raise InvalidInput("a hybrid public key is 1184 + 32 bytes")
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(public_bytes[:_MLKEM768_PUBLIC_BYTES]),
            x25519.X25519PublicKey.from_public_bytes(public_bytes[_MLKEM768_PUBLIC_BYTES:]),
        )
    except ValueError:
        raise
    except Exception as exc:
        raise InvalidInput("public sealing key does not parse") from exc


def _check_plaintext(value: object) -> None:
    if not isinstance(value, bytes | bytearray):
        raise TypeError("sealing takes bytes; encode text as UTF-8 first")
    if len(value) > MAX_PLAINTEXT_BYTES:
        raise InvalidInput(f"a sealed field holds at most {MAX_PLAINTEXT_BYTES} bytes")


@lru_cache(maxsize=1024)
def _receiver_context(key: OpeningKey, enc: bytes, info: bytes) -> hpke_context.Context:
    # Bounded: one entry per recent payment, so the 2nd..nth field of a payment skip the KEM.
    if key.suite == X25519:
        assert isinstance(key.private_key, x25519.X25519PrivateKey)
        return hpke_context.setup_receiver(enc, key.private_key, info, key.recipient.public_bytes)
    return hpke_context.setup_receiver_hybrid(enc, *_hybrid_private(key.private_bytes), info)


@lru_cache(maxsize=64)
def _hybrid_public(public_bytes: bytes) -> tuple[mlkem.MLKEM768PublicKey, x25519.X25519PublicKey]:
    """A hybrid recipient's two public keys (parsed once per key: a payment seals to few)."""
    return (
        mlkem.MLKEM768PublicKey.from_public_bytes(public_bytes[:_MLKEM768_PUBLIC_BYTES]),
        x25519.X25519PublicKey.from_public_bytes(public_bytes[_MLKEM768_PUBLIC_BYTES:]),
    )


@lru_cache(maxsize=64)
def _hybrid_private(private_bytes: bytes) -> tuple[mlkem.MLKEM768PrivateKey, x25519.X25519PrivateKey]:
    """A hybrid key's two private keys (derived from the seed once per key version)."""
    return (
        mlkem.MLKEM768PrivateKey.from_seed_bytes(private_bytes[:_MLKEM768_SEED_BYTES]),
        x25519.X25519PrivateKey.from_private_bytes(private_bytes[_MLKEM768_SEED_BYTES:]),
    )


def _context_info(kid: str, version: int, suite: str, context_id: str) -> bytes:
    return _length_prefixed(
        [_CONTEXT_INFO_LABEL, kid.encode(), str(version).encode(), suite.encode(), context_id.encode()]
    )


def _info(kid: str, version: int, suite: str, field: str, context_id: str) -> bytes:
    # Length-prefixed, so no two different (field, context) pairs encode to the same bytes.
    parts = [_INFO_LABEL, kid.encode(), str(version).encode(), suite.encode()]
    return _length_prefixed([*parts, field.encode("utf-8"), context_id.encode("utf-8")])


def _length_prefixed(parts: list[bytes]) -> bytes:
    if any(len(part) > MAX_NAME_BYTES for part in parts):
        raise InvalidInput(f"field names and context ids are at most {MAX_NAME_BYTES} bytes")
    return b"".join(struct.pack(">H", len(part)) + part for part in parts)
