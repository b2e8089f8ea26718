"""Request bodies read within bounds, before anything looks at them.

Every HTTP surface of the payment path (the gateway, both agents) reads a request's body here
first: a body whose declared ``Content-Length`` is over the limit is refused at once, unread
(413); one that grows past the limit is refused as soon as it does, with nothing further read
(413); one that takes longer than the read timeout to arrive — a slow sender holding the
connection — is refused when the timeout passes (408). Only then is the signature checked and
the JSON parsed. Refusals are plain JSON without a signature: nothing was authenticated yet.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blindgate.api.models import MAX_BODY_BYTES

BODY_TIMEOUT_S = 10.0  # the whole body of a request, from its first byte to its last


class _TooLarge(Exception):
    pass


async def read_body(scope: Scope, receive: Receive, limit: int, timeout_s: float) -> bytes | int | None:
    """The whole body; else the HTTP status to refuse it with (413, 408); None if the client
    went away first."""
    declared = dict(scope.get("headers", [])).get(b"content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return 413
    try:
        async with asyncio.timeout(timeout_s):
            return await _collect(receive, limit)
    except _TooLarge:
        return 413
    except TimeoutError:
        return 408


async def _collect(receive: Receive, limit: int) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def refuse(send: Send, status: int) -> None:
    """Answer ``status`` (413 or 408) and close: the rest of the body is never read."""
    reason = "the request body is too large" if status == 413 else "the request body came too slowly"
    body = json.dumps({"error": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then waits on the real one (for a disconnect)."""
    given = False

    async def again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


def bounded_bodies(
    app: ASGIApp, limit: int = MAX_BODY_BYTES, timeout_s: float = BODY_TIMEOUT_S
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """``app`` behind `read_body`: it sees only bodies within the bounds, already read."""

    async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        body = await read_body(scope, receive, limit, timeout_s)
        if isinstance(body, int):
            await refuse(send, body)
        elif body is not None:
            await app(scope, replaying(body, receive), send)

    return bounded

