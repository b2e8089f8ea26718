"""The ristretto255 prime-order group (RFC 9496), for OPRF-style protocols such as PSI and base OT.

All group arithmetic is libsodium's, through ``rbcl`` (a wheel that bundles libsodium;
PyNaCl exposes no ristretto255 calls). Written here by hand, and only because no
maintained Python library offers it: ``expand_message_xmd`` (RFC 9380 section 5.3.1)
over ``hashlib.sha512``, which ``hash_to_group`` feeds to libsodium's one-way map
(``crypto_core_ristretto255_from_hash``, RFC 9496 section 4.3.4) exactly as RFC 9380
Appendix B specifies ``hash_to_ristretto255``. Tests check all three against the RFC
vectors (RFC 9380 Appendix K.3, RFC 9496 Appendix A, RFC 9497 Appendix A.1.1).

Every element that comes from a peer goes through :func:`decode_element`, which rejects
non-canonical and invalid encodings and, unless told otherwise, the identity: a peer
that sends the identity (or a small-order point) would otherwise make every product
the same value. Scalars are always drawn with libsodium's RNG.
"""

from __future__ import annotations

import hashlib

import rbcl

from blindgate.crypto.errors import InvalidElement, InvalidInput

ELEMENT_BYTES = 32
SCALAR_BYTES = 32
IDENTITY = bytes(ELEMENT_BYTES)
GENERATOR = bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76")
# The RFC 9380 suite name for hash_to_ristretto255 with expand_message_xmd(SHA-512).
SUITE_ID = b"ristretto255_XMD:SHA-512_R255MAP_RO_"

_SHA512_BLOCK = 128
_SHA512_OUT = 64


def expand_message_xmd(message: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512: ``length`` uniform bytes from ``message`` under ``dst``."""
    if len(dst) > 255:
        dst = hashlib.sha512(b"H2C-OVERSIZE-DST-" + dst).digest()
    blocks = -(-length // _SHA512_OUT)
    if blocks > 255 or length > 65535:
        raise InvalidInput("expand_message_xmd: requested length is too large")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(
        bytes(_SHA512_BLOCK) + message + length.to_bytes(2, "big") + b"\x00" + dst_prime
    ).digest()
    b_prev = hashlib.sha512(b0 + b"\x01" + dst_prime).digest()
    out = [b_prev]
    for i in range(2, blocks + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, b_prev, strict=True))
        b_prev = hashlib.sha512(mixed + bytes([i]) + dst_prime).digest()
        out.append(b_prev)
    return b"".join(out)[:length]


def from_uniform_bytes(uniform: bytes) -> bytes:
    """RFC 9496's one-way map: 64 uniform bytes to an element (libsodium ``from_hash``)."""
    if len(uniform) != 64:
        raise InvalidInput("the one-way map takes exactly 64 bytes")
    return bytes(rbcl.crypto_core_ristretto255_from_hash(uniform))


def hash_to_group(message: bytes, dst: bytes) -> bytes:
    """RFC 9380 ``hash_to_ristretto255``: ``message`` to an element, domain-separated by ``dst``."""
    return from_uniform_bytes(expand_message_xmd(message, dst, 64))


def decode_element(data: bytes, allow_identity: bool = False) -> bytes:
    """Check a peer's element: canonical, on the group and (by default) not the identity."""
    if len(data) != ELEMENT_BYTES:
        raise InvalidElement(f"an element is {ELEMENT_BYTES} bytes, got {len(data)}")
    if data == IDENTITY:
        if allow_identity:
            return data
        raise InvalidElement("the identity element is not accepted here")
    if not rbcl.crypto_core_ristretto255_is_valid_point(data):
        raise InvalidElement("not a canonical ristretto255 encoding")
    return bytes(data)


def random_scalar() -> bytes:
    """A uniformly random non-zero scalar, from libsodium's RNG."""
    return bytes(rbcl.crypto_core_ristretto255_scalar_random())


def invert_scalar(scalar: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_scalar_invert(scalar))


def scalar_mult(scalar: bytes, element: bytes) -> bytes:
    """``scalar * element``; raises :class:`InvalidElement` if the input or result is invalid."""
    try:
        return bytes(rbcl.crypto_scalarmult_ristretto255(scalar, element))
    except Exception as exc:  # rbcl raises a bare RuntimeError on libsodium's -1
        raise InvalidElement("scalar multiplication failed: invalid element or identity result") from exc


def scalar_mult_base(scalar: bytes) -> bytes:
    return bytes(rbcl.crypto_scalarmult_ristretto255_base(scalar))


def add(a: bytes, b: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_add(a, b))


def sub(a: bytes, b: bytes) -> bytes:
    return bytes(rbcl.crypto_core_ristretto255_sub(a, b))


__all__ = [
    "ELEMENT_BYTES",
    "GENERATOR",
    "IDENTITY",
    "SCALAR_BYTES",
    "SUITE_ID",
    "InvalidElement",
    "add",
    "decode_element",
    "expand_message_xmd",
    "from_uniform_bytes",
    "hash_to_group",
    "invert_scalar",
    "random_scalar",
    "scalar_mult",
    "scalar_mult_base",
    "sub",
]
