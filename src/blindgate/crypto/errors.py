"""The errors of `blindgate.crypto`.

Every message is generic on purpose: none ever carries a key, a plaintext, a field's
value or a customer id, so a caller may log it or turn it into an API error as it is.
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of every error this package raises on bad input."""


class SealedValueInvalid(CryptoError):
    """A sealed envelope is malformed, tampered with, or was moved to another field or payment."""


class UnknownKey(CryptoError):
    """An envelope or signature names a key id or version that this party does not hold."""


class InvalidSignature(CryptoError):
    """A `Signature` header is missing, malformed, or does not verify."""


class KeyStoreError(CryptoError):
    """A key store on disk is missing, incomplete or unreadable."""
