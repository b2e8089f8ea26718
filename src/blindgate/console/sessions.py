"""Signed session cookies: ``<base64url JSON>.<base64url HMAC-SHA256>``, with an expiry.

The cookie carries only the user's name and when the session ends; the HMAC key is the
console's secret (random per start unless ``--secret-file``: then sessions outlive a
restart). A cookie that is altered, signed with another key or expired is no session.
Hand-written (a dozen lines over `cryptography`'s HMAC) rather than adding itsdangerous.
"""

from __future__ import annotations

import base64
import json
import time

from cryptography.hazmat.primitives import hashes, hmac

COOKIE = "blindgate_console"
SESSION_S = 8 * 3600


def make_cookie(secret: bytes, user: str, now: float | None = None) -> str:
    body = json.dumps({"u": user, "exp": int((now or time.time()) + SESSION_S)}, separators=(",", ":"))
    payload = _b64(body.encode())
    return f"{payload}.{_b64(_mac(secret, payload))}"


def read_cookie(secret: bytes, cookie: str | None, now: float | None = None) -> str | None:
    """The signed-in user's name, or None."""
    if not cookie or cookie.count(".") != 1 or len(cookie) > 1024:
        return None
    payload, signature = cookie.split(".")
    check = hmac.HMAC(secret, hashes.SHA256())
    check.update(payload.encode())
    try:
        check.verify(_unb64(signature))
        body = json.loads(_unb64(payload))
    except Exception:  # a bad signature, bad base64 or bad JSON: no session, whatever the reason
        return None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("u"), str)
        or not isinstance(body.get("exp"), int)
    ):
        return None
    return body["u"] if body["exp"] > (now or time.time()) else None


def _mac(secret: bytes, payload: str) -> bytes:
    mac = hmac.HMAC(secret, hashes.SHA256())
    mac.update(payload.encode())
    return mac.finalize()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
