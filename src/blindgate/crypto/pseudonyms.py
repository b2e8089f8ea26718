"""Pseudonyms: a wallet-keyed PRF of a customer id, one independent PRF per purpose.

The wallet's agent computes ``pseudonym(key, "risk", customer_id)`` and hands only the
result to the gateway, which can count and limit payments per pseudonym but, without
the wallet's key, can neither compute the pseudonym of a known customer id nor reverse
one (unlike a plain hash of a phone number, which a dictionary reverses).

Construction (standard parts from `cryptography` and the standard library; nothing new):
the per-purpose key is HKDF-SHA256(ikm=wallet key, info="blindgate/pseudonym/v1" || purpose),
derived once per (key, purpose) and cached; the pseudonym is
``ps_`` + base64url(HMAC-SHA256(purpose key, UTF-8 customer id)) (256 bits, 43 characters).
Different purposes give unrelated pseudonyms, so the risk pseudonym of a customer cannot
be joined with, say, a marketing one.

What leaks: to the gateway, whether two payments come from the same customer of the same
wallet (that is the point), and nothing else; across wallets and purposes, nothing.
"""

from __future__ import annotations

import hmac
import re
from functools import lru_cache
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from blindgate.crypto.encoding import b64url_encode
from blindgate.crypto.errors import InvalidInput

PREFIX: Final = "ps_"
KEY_BYTES: Final = 32
MAX_CUSTOMER_ID_BYTES: Final = 1024
_PURPOSE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_PSEUDONYM: Final = re.compile(r"ps_[A-Za-z0-9_-]{43}")


def pseudonym(key: bytes, purpose: str, customer_id: str) -> str:
    """The pseudonym of ``customer_id`` for ``purpose`` under the wallet's ``key``."""
    if not customer_id:
        raise InvalidInput("a customer id is not empty")
    message = customer_id.encode("utf-8")
    if len(message) > MAX_CUSTOMER_ID_BYTES:
        raise InvalidInput(f"a customer id is at most {MAX_CUSTOMER_ID_BYTES} bytes")
    return PREFIX + b64url_encode(hmac.digest(purpose_key(key, purpose), message, "sha256"))


def is_pseudonym(value: object) -> bool:
    return isinstance(value, str) and _PSEUDONYM.fullmatch(value) is not None


@lru_cache(maxsize=256)
def purpose_key(key: bytes, purpose: str) -> bytes:
    """The key of one purpose, derived from the wallet's pseudonym key (cached: it is per call hot)."""
    if len(key) < KEY_BYTES:
        raise InvalidInput(f"a pseudonym key is at least {KEY_BYTES} bytes")
    if _PURPOSE.fullmatch(purpose) is None:
        raise InvalidInput(
            "a purpose is 1 to 64 characters of a-z 0-9 . _ -, starting with a letter or digit"
        )
    info = b"blindgate/pseudonym/v1\x00" + purpose.encode("ascii")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)
