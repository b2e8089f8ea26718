"""Serving an ASGI app under uvicorn with every connection bounded: the one way each service serves.

The gateway, both agents, the transparency log and its witnesses, the console and the testbed's
reference backends all serve through :func:`serve`. uvicorn (0.55, its httptools protocol)
alone bounds little: its keep-alive timeout starts only after a response and stops at the next
request's first byte, so a connection that sends nothing, or headers a byte at a time, or a body
a byte at a time, is held for ever; its ``limit_concurrency`` counts idle connections but acts
only once a whole request has arrived, so idle connections both hold descriptors and turn real
requests away with 503.
:class:`ServeLimits` says what holds instead (each bound a command-line or file option; the
defaults are the field defaults):

- **Headers** (``header_timeout_s``, 10 s): a request's headers must be complete within this of
  the connection opening, or of the previous response on a kept-alive connection; else the
  connection is closed. Headers are at most 16 KiB (`MAX_HEADER_BYTES`, and what the read that
  passes it brought), else 400 and the connection is closed.
- **Body** (``body_timeout_s``, 12 s): the body must be complete within this of the headers;
  else the connection is closed. The payment path's apps answer 408 sooner, at 10 s
  (``blindgate.api.bodies``), so a client there gets an answer before the close.
- **Idle keep-alive** (``keep_alive_s``, 5 s): no byte within this of a response closes the
  connection (uvicorn's own timer).
- **TLS handshake** (``tls_handshake_timeout_s``, 10 s): from the TCP accept to the end of the
  handshake (asyncio's default is 60 s). A connection in its handshake counts against the cap
  below from its accept: the loop accepts TCP and does the handshake itself (`loop.start_tls`),
  where asyncio's own TLS server would show the app a connection only once its handshake ends.
- **Connections** (``max_connections``, 512 per process): when a new connection would pass the
  cap, the connection that has waited longest on its client (in its TLS handshake, no request
  yet, unfinished headers or body, or idle between requests) is closed to make room;
  connections whose request the app is working on are never displaced, and when all are such
  the newcomer gets a 503 (or, still in its handshake, is closed). Idle and slow connections
  therefore never hold more than the cap's descriptors, and never keep a real request out: a
  real request, once its headers are in, cannot be displaced.
  The process's descriptor limit is raised (to its hard limit) to fit the cap and a reserve.
  asyncio accepts a burst of connections before the cap's check sees them, so a burst may hold
  more for an instant, up to the descriptor limit (asyncio then pauses accepting for a second).
  The rule keeps a fixed set of held connections out; a client that opens new ones faster than
  real clients send their headers is a flood, for a rate limit in front (by address), not this.
- **Workers** (``workers`` > 1): each worker process listens on a socket of its own, all bound
  to the one address with ``SO_REUSEPORT``, so the kernel spreads new connections over them.
  uvicorn's workers share one listening socket instead, and the worker that wakes first takes
  every connection waiting: clients that keep their connections alive (the agents do) all
  ended up on one worker (measured: 3,200 of 3,200 payments on one of two), and a second worker
  added nothing. The parent binds the address first, ``SO_REUSEPORT`` too, without listening:
  it holds the port for the workers (a worker that restarts binds beside it again).
- **Logs**: a line repeated at a high rate (the accept loop out of descriptors, failed TLS
  handshakes, invalid requests, displaced connections) is written at most ``REPEATS_PER_WINDOW``
  times a minute per message, then once more with the count of those left out. No line names a
  client address.

Written by hand because uvicorn offers none of it: a subclass of uvicorn's httptools protocol
(:class:`GuardedProtocol`, a deadline per connection phase, the headers' bound and the
displacement rule), an event loop whose TLS servers do the handshake after the accept
(:class:`BoundedLoop`, :class:`TlsHandshake`; uvicorn passes no handshake timeout, and asyncio
counts nothing) and whose workers listen on sockets of their own, and a logging filter
(:class:`RepeatLimiter`). HTTP parsing, TLS and the rest are uvicorn's, httptools' and asyncio's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import resource
import socket
import ssl
import time
from collections.abc import Callable, Collection
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

from blindgate.net.limits import ServeLimits

log = logging.getLogger(__name__)

REPEATS_PER_WINDOW = 5
REPEAT_WINDOW_S = 60.0
DESCRIPTOR_RESERVE = 128  # for the store, log files and outgoing calls, beside the served connections
_REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


def serve(
    app: Any,
    host: str,
    port: int,
    limits: ServeLimits | None = None,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    workers: int = 1,
    factory: bool = False,
) -> None:
    """Serve ``app`` (with ``workers`` > 1: an import string, ``factory`` if it names a factory)
    until the process is told to stop, every connection bounded by ``limits``."""
    limits = limits or ServeLimits()
    config = BoundedConfig(
        app,
        limits=limits,
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        http=GuardedProtocol,
        timeout_keep_alive=limits.keep_alive_s,  # a float works: it goes to call_later
        log_level="warning",
        access_log=False,
    )
    _fit_descriptors(limits.max_connections)  # per process; worker processes inherit the limit
    if workers > 1:
        Multiprocess(config, sockets=[_port_for_workers(host, port)]).run()
        return
    config.load_app()
    uvicorn.Server(config).run()


class BoundedConfig(uvicorn.Config):
    """uvicorn's configuration with the limits; picklable, so that worker processes get them."""

    def __init__(self, app: Any, *, limits: ServeLimits, **options: Any) -> None:
        super().__init__(app, **options)
        self.limits = limits

    def get_loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop]:
        return functools.partial(BoundedLoop, self.limits, own_listener=self.workers > 1)


class BoundedLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, whose TLS servers count a connection from its accept (not from the end of
    its handshake, as asyncio's own TLS servers would) and time its handshake out, and whose
    repeated error lines are limited (the accept loop out of descriptors reports every second)."""

    def __init__(self, limits: ServeLimits, *, own_listener: bool = False) -> None:
        super().__init__()
        self.limits = limits
        self.own_listener = own_listener  # a worker: listen beside the parent's port (module docstring)
        self.handshaking: set[TlsHandshake] = set()
        self.served: Collection[Any] = ()  # uvicorn's set of the connections it serves
        limit_repeats()
        self.set_exception_handler(_report)

    async def create_server(self, protocol_factory: Any, *args: Any, **kwargs: Any) -> asyncio.Server:
        if self.own_listener and kwargs.get("sock") is not None:
            kwargs["sock"] = _listener_beside(kwargs["sock"])
        context = kwargs.pop("ssl", None)
        if context is None:
            return await super().create_server(protocol_factory, *args, **kwargs)

        def handshake_first() -> TlsHandshake:
            return TlsHandshake(self, protocol_factory(), context)

        return await super().create_server(handshake_first, *args, **kwargs)


class TlsHandshake(asyncio.Protocol):
    """A TCP connection to a TLS port, counted against the cap from its accept: it does the
    handshake (`loop.start_tls`, bounded by the handshake timeout), then hands the TLS transport
    to the HTTP protocol. Until then it is waiting on its client, so it may be displaced."""

    def __init__(self, loop: BoundedLoop, inner: asyncio.Protocol, context: ssl.SSLContext) -> None:
        self.loop, self.inner, self.context = loop, inner, context
        self.transport: asyncio.Transport | None = None
        self.phase_since = loop.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.loop.handshaking.add(self)
        served: set[Any] = getattr(self.inner, "connections", set())
        if len(served) + len(self.loop.handshaking) > self.loop.limits.max_connections:
            make_room(self, served, self.loop.handshaking)
        if not transport.is_closing():
            self.loop.create_task(self._handshake())

    def connection_lost(self, exc: Exception | None) -> None:
        self.loop.handshaking.discard(self)

    def waiting_on_client(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def evict(self) -> None:
        self.loop.handshaking.discard(self)
        if self.transport is not None:
            self.transport.abort()

    async def _handshake(self) -> None:
        assert self.transport is not None
        timeout = self.loop.limits.tls_handshake_timeout_s
        early = _EarlyData()  # what arrives between the handshake's end and the HTTP protocol's start
        try:
            secure = await self.loop.start_tls(
                self.transport,
                early,
                self.context,
                server_side=True,
                ssl_handshake_timeout=timeout,
                ssl_shutdown_timeout=timeout,
            )
        except (OSError, ssl.SSLError, EOFError, RuntimeError):  # timed out, refused, or the peer left
            log.info("a TLS handshake failed or did not finish in time: closed")
            self.evict()
            return
        finally:
            self.loop.handshaking.discard(self)
        if secure is None or self.transport.is_closing() or early.overflowed:
            self.evict()
            return
        self.inner.connection_made(secure)
        secure.set_protocol(self.inner)
        early.hand_over(self.inner)


class _EarlyData(asyncio.Protocol):
    """Holds what the TLS layer delivers before the HTTP protocol has its transport (a TLS 1.3
    client sends its request with its last handshake message), then hands it over. Bounded: a
    client that sends more than ``limit`` bytes there is closed."""

    def __init__(self, limit: int = 64 * 1024) -> None:
        self.chunks: list[bytes] = []
        self.size, self.limit, self.overflowed = 0, limit, False
        self.eof, self.lost = False, False
        self.exc: Exception | None = None

    def data_received(self, data: bytes) -> None:
        self.size += len(data)
        self.overflowed = self.overflowed or self.size > self.limit
        if not self.overflowed:
            self.chunks.append(data)

    def eof_received(self) -> bool | None:
        self.eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost, self.exc = True, exc

    def hand_over(self, protocol: asyncio.Protocol) -> None:
        for chunk in self.chunks:
            protocol.data_received(chunk)
        if self.lost:
            protocol.connection_lost(self.exc)
        elif self.eof:
            protocol.eof_received()


# Where a connection is, as the parser sees the client's side: waiting for headers, for a body, or
# done sending (the app works on the request, or its answer is on its way).
HEADERS, BODY, APP = "headers", "body", "app"
# The most a request's headers may take (h11's default, which this server used before); a read
# that completes them may bring more, so the bound is this plus one read.
MAX_HEADER_BYTES = 16 * 1024


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline per phase, a bound on the headers' size, and
    the displacement rule (see the module). httptools' parser reports where the client is:
    its headers complete, its message complete; the response's end starts the next wait."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.limits: ServeLimits = self.config.limits  # type: ignore[attr-defined]
        self.deadline: asyncio.TimerHandle | None = None
        self._enter(HEADERS)
        if isinstance(self.loop, BoundedLoop):
            self.loop.served = self.connections  # what `open_connections` counts
        handshaking: set[Any] = getattr(self.loop, "handshaking", set())
        if len(self.connections) + len(handshaking) > self.limits.max_connections:
            make_room(self, self.connections, handshaking)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.phase == HEADERS and not self.transport.is_closing():
            self.header_bytes += len(data)
            if self.header_bytes > MAX_HEADER_BYTES:
                log.info("a connection sent more header bytes than allowed: closed")
                self._disarm()
                self.send_400_response("Request headers too large.")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._enter(BODY)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._enter(APP)

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)  # a whole request sent meanwhile, which uvicorn now starts
        super().on_response_complete()
        if not self.transport.is_closing() and not queued:
            self._enter(HEADERS)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._disarm()

    def waiting_on_client(self) -> bool:
        return self.phase in (HEADERS, BODY) and not self.transport.is_closing()

    def evict(self) -> None:
        self._disarm()
        self.transport.abort()

    def refuse(self) -> None:
        self._disarm()
        self.transport.write(_REFUSAL)
        self.transport.close()

    def _enter(self, phase: str) -> None:
        """Start ``phase``'s deadline (the app bounds its own work: none for APP)."""
        self.phase, self.phase_since, self.header_bytes = phase, self.loop.time(), 0
        if phase == HEADERS:
            self._arm(self.limits.header_timeout_s, "a connection sent no whole request headers in time")
        elif phase == BODY:
            self._arm(self.limits.body_timeout_s, "a connection sent no whole request body in time")
        else:
            self._disarm()

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        self.deadline = self.loop.call_later(seconds, self._expire, reason)

    def _disarm(self) -> None:
        if getattr(self, "deadline", None) is not None:
            self.deadline.cancel()  # type: ignore[union-attr]
            self.deadline = None

    def _expire(self, reason: str) -> None:
        self.deadline = None
        if not self.transport.is_closing():
            log.info(reason + ": closed")
            self.transport.abort()  # at once: the descriptor is free now, not after a TLS goodbye


def open_connections() -> int | None:
    """The connections this process's server holds open now — served, and in their TLS handshake
    — for the ``blindgate_open_connections`` gauge; None outside a bounded server's event loop."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return len(loop.served) + len(loop.handshaking) if isinstance(loop, BoundedLoop) else None


def make_room(newcomer: GuardedProtocol | TlsHandshake, served: Any, handshaking: Any) -> None:
    """Over the cap: close the connection that has waited longest on its client (in its handshake,
    no request yet, unfinished headers or body, idle between requests), else refuse the newcomer."""
    guarded = (c for c in (*served, *handshaking) if isinstance(c, GuardedProtocol | TlsHandshake))
    waiting = [c for c in guarded if c is not newcomer and c.waiting_on_client()]
    if waiting:
        log.warning("connection cap reached: closed the connection that waited longest on its client")
        min(waiting, key=lambda c: c.phase_since).evict()
        return
    log.warning("connection cap reached with every connection busy: refused a new one")
    if isinstance(newcomer, GuardedProtocol):
        newcomer.refuse()  # an HTTP answer: 503
    else:
        newcomer.evict()  # no TLS yet to answer in


class RepeatLimiter(logging.Filter):
    """Lets each message (its template, per logger) through ``per_window`` times a window; the first
    one after a window with some left out says how many. Bounded: at most ``max_keys`` messages tracked."""

    def __init__(
        self,
        per_window: int = REPEATS_PER_WINDOW,
        window_s: float = REPEAT_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        super().__init__()
        self.per_window, self.window_s, self.clock, self.max_keys = per_window, window_s, clock, max_keys
        self.seen: dict[tuple[str, str], list[float]] = {}  # key -> [window start, passed, left out]

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = self.clock()
        entry = self.seen.get(key)
        if entry is None or now - entry[0] >= self.window_s:
            left_out = int(entry[2]) if entry is not None else 0
            if len(self.seen) >= self.max_keys and entry is None:
                self.seen.clear()
            self.seen[key] = [now, 1, 0]
            if left_out:
                note = f"{left_out} more like this in the last {self.window_s:g} s not logged"
                record.msg = f"{record.msg} [{note}]"
            return True
        if entry[1] < self.per_window:
            entry[1] += 1
            return True
        entry[2] += 1
        return False


def _report(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event-loop error as one line that repeats alike (asyncio's own adds the transport's and
    the peer's reprs, so no two lines match and none can be counted as a repeat), through the limiter."""
    message = str(context.get("message", "event loop error")).split(" <", 1)[0]
    exc = context.get("exception")
    log.error(f"event loop: {message}" + (f" ({type(exc).__name__})" if exc else ""), exc_info=exc)


_LIMITED_LOGGERS = ("asyncio", "uvicorn", "uvicorn.error", __name__)


def limit_repeats(limiter: RepeatLimiter | None = None) -> None:
    """Put one `RepeatLimiter` on the loggers that repeat under hostile load (idempotent)."""
    limiter = limiter or RepeatLimiter()
    for name in _LIMITED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RepeatLimiter) for f in logger.filters):
            logger.addFilter(limiter)


def _port_for_workers(host: str, port: int) -> socket.socket:
    """The address the workers will listen on, bound (``SO_REUSEPORT``) but not listening."""
    sock = _bound_beside_others(socket.AF_INET6 if ":" in host else socket.AF_INET, (host, port))
    sock.set_inheritable(True)
    return sock


def _listener_beside(shared: socket.socket) -> socket.socket:
    """A worker's own socket on ``shared``'s address: the kernel spreads connections over these."""
    return _bound_beside_others(shared.family, shared.getsockname())


def _bound_beside_others(family: int, address: Any) -> socket.socket:
    """A TCP socket bound to ``address`` with ``SO_REUSEPORT``, beside the others bound so.

    Made with ``IPPROTO_TCP`` named: the connections it accepts inherit the protocol number,
    and asyncio turns Nagle's algorithm off (``TCP_NODELAY``) only on a socket that names it.
    Without, every answer written in two parts waited for the client's delayed ACK: 48 ms a
    request at the median, measured."""
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _fit_descriptors(connections: int) -> None:
    """Raise the soft descriptor limit, as far as the hard one allows, to hold the cap and a reserve."""
    need = connections + DESCRIPTOR_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        if target < need:
            log.warning("the descriptor limit is below the connection cap and its reserve: lower the cap")
