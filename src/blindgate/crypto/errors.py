"""The errors of `blindgate.crypto`.

Every message is generic on purpose: none ever carries a key, a plaintext, a field's
value or a customer id, so a caller may log it or turn it into an API error as it is.
"""

from __future__ import annotations

from blindgate.errors import BlindgateError


class CryptoError(BlindgateError):
    """Base of every error this package raises on bad input."""


class InvalidInput(CryptoError, ValueError):
    """A key, key id, version, encoding or size that does not parse or is out of range.

    Also a `ValueError`, which is what it was before this package had one root: callers
    that validate their own input with ``except ValueError`` keep working.
    """


class InvalidElement(InvalidInput):
    """Bytes that are not the canonical encoding of a (non-identity) ristretto255 element."""


class SealedValueInvalid(CryptoError):
    """A sealed envelope is malformed, tampered with, or was moved to another field or payment."""


class UnknownKey(CryptoError):
    """An envelope or signature names a key id or version that this party does not hold."""


class InvalidSignature(CryptoError):
    """A `Signature` header is missing, malformed, or does not verify."""


class KeyStoreError(CryptoError):
    """A key store on disk is missing, incomplete or unreadable."""
