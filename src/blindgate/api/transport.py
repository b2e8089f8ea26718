"""The network under the partners' calls: httpx's client API on aiohttp's connections.

Why: every payment makes one call from the gateway to a wallet's agent (and the agents call
the gateway and their backends). httpx's own HTTP/1.1 stack (httpcore, h11, anyio) is pure
Python: it measured 1.2-1.5 ms of client CPU per call here, more than the whole rest of a
payment's gateway work, while aiohttp's client (its HTTP parser in C) took 0.16 ms for the same
calls (`benchmarks/wire.py`, and the numbers in docs/gateway.md). httpx stays the API the code
calls and the seam the tests use (an in-process transport routes calls to ASGI apps: see
tests/gateway/harness.py); `AiohttpTransport` is what runs under it on a real network.

Written here: only the adapter — one request in, one response out. aiohttp does the
connections, keep-alive, TLS and parsing. What the adapter adds:

- **bounds**: a call has one total timeout (the client's read timeout, or its connect timeout
  if it has none) and an answer of more than `MAX_ANSWER_BYTES` is refused unread — a partner
  cannot make the caller buffer without limit;
- **TLS** from the caller's own context (a pinned certificate, `blindgate.api.calls.pinned_client`);
- **no cookies, no redirects**, as the signed calls need;
- **errors** as httpx's (`httpx.TimeoutException`, `httpx.TransportError`), which
  `blindgate.api.calls.signed_call` turns into `NoAnswer`.

A session belongs to one event loop; the transport opens one per loop it is used on (a server
has one; tests run several in turn).
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx

MAX_ANSWER_BYTES = 1024 * 1024
# Set by aiohttp itself for the connection it uses; no compression is asked for (nor decoded).
_OWN_HEADERS = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"accept-encoding"}
)


class AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, *, ssl_context: ssl.SSLContext | None = None, max_connections: int = 100) -> None:
        self._ssl, self._limit = ssl_context, max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, ssl=self._ssl if self._ssl is not None else True
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("Accept-Encoding",),
            )
            self._loop = loop
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        total = timeouts.get("read") or timeouts.get("connect")
        headers = [(k.decode(), v.decode()) for k, v in request.headers.raw if k.lower() not in _OWN_HEADERS]
        try:
            async with self._session_here().request(
                request.method,
                str(request.url),
                headers=headers,
                data=await request.aread(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=total),
            ) as answer:
                body = await _bounded(answer)
                return httpx.Response(
                    answer.status,
                    headers=[(k, v) for k, v in answer.raw_headers],
                    content=body,
                    request=request,
                )
        except TimeoutError:
            raise httpx.ReadTimeout("no answer in time", request=request) from None
        except (aiohttp.ClientError, ssl.SSLError, OSError) as exc:
            raise httpx.ConnectError(type(exc).__name__, request=request) from None

    async def aclose(self) -> None:
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = None


async def _bounded(answer: aiohttp.ClientResponse) -> bytes:
    """The answer's body, refused past `MAX_ANSWER_BYTES` (declared or sent)."""
    if (answer.content_length or 0) > MAX_ANSWER_BYTES:
        raise aiohttp.ClientPayloadError("answer too large")
    body = await answer.content.read(MAX_ANSWER_BYTES + 1)
    while len(body) <= MAX_ANSWER_BYTES and not answer.content.at_eof():
        more = await answer.content.read(MAX_ANSWER_BYTES + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > MAX_ANSWER_BYTES:
        raise aiohttp.ClientPayloadError("answer too large")
    return body
