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
  `blindgate.api.calls.signed_call` turns into `NoAnswer`;
- **a direct POST** (`AiohttpTransport.post`): the signed calls skip httpx's client layers
  (request and response models, auth and redirect handling) on a real network, with the same
  bounds and errors. Those layers cost about 100 us of client CPU a call: a signed call took
  294-324 us through them and 215-225 us without (`benchmarks/signed_call.py`, alternating
  rounds), about a twentieth of the gateway's CPU a payment over the wire.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import httpx

MAX_ANSWER_BYTES = 1024 * 1024
# Set by aiohttp itself for the connection it uses; no compression is asked for (nor decoded).
_OWN_HEADERS = frozenset(
    {b"host", b"content-length", b"transfer-encoding", b"connection", b"accept-encoding"}
)


@dataclass(frozen=True)
class Answer:
    """A whole answer: its status, its headers (looked up case-insensitively), its body."""

    status: int
    headers: Mapping[str, str]
    raw_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


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
        answer = await self._send(
            request.method, str(request.url), headers, await request.aread(), total, request
        )
        return httpx.Response(answer.status, headers=answer.raw_headers, content=answer.body, request=request)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], total_s: float | None) -> Answer:
        """POST ``body`` to ``url`` straight on aiohttp (module docstring: a direct POST)."""
        return await self._send("POST", url, list(headers.items()), body, total_s)

    async def _send(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes,
        total_s: float | None,
        request: httpx.Request | None = None,
    ) -> Answer:
        try:
            async with self._session_here().request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=total_s),
            ) as answer:
                content = await _bounded(answer)
                return Answer(answer.status, answer.headers, tuple(answer.raw_headers), content)
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
