"""Unpadded base64url, the alphabet of envelopes, pseudonyms and key bundles.

Decoding is strict: only the URL-safe alphabet, no padding, and only the canonical
encoding of the bytes (unused trailing bits zero), so one byte string has exactly one
text form and a string comparison of two envelopes is a comparison of their bytes.
"""

from __future__ import annotations

import base64
import binascii

from blindgate.crypto.errors import InvalidInput

_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_VALUE = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")}


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; raises `InvalidInput` on anything but the canonical form."""
    # strict_mode refuses any character outside the (standard) alphabet; the url-safe
    # alphabet is mapped onto it, so the standard-only characters are refused first.
    if len(text) % 4 == 1 or not text.isascii() or "+" in text or "/" in text or "=" in text:
        raise InvalidInput("not unpadded base64url")
    padded = (text + "=" * (-len(text) % 4)).encode("ascii").translate(_TO_STANDARD)
    try:
        data = binascii.a2b_base64(padded, strict_mode=True)
    except binascii.Error as exc:
        raise InvalidInput("not unpadded base64url") from exc
    # Canonical iff the bits the last character carries beyond the data are zero
    # (cheaper than re-encoding, which matters for the 1.5 kB hybrid envelopes).
    unused = {2: 0x0F, 3: 0x03}.get(len(text) % 4, 0)
    if unused and _VALUE[text[-1]] & unused:
        raise InvalidInput("not canonical base64url")
    return data
