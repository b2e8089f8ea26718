"""What an operator sees of a running service: metrics, one log line per request, its API.

`Observed` wraps a service's ASGI app (the gateway's or an agent's, as `blindgate gateway`
and `blindgate agent` serve them, the transparency log's and its witness's, the console's, the
reference backends') and adds, for every HTTP request:

- Prometheus metrics: ``blindgate_http_requests_total{service, route, method, status,
  result_code}``, ``blindgate_http_request_seconds{service, route}`` (a histogram) and
  ``blindgate_http_requests_in_progress{service}`` (the requests open now: with HTTP/1.1
  keep-alive, the connections doing work) and ``blindgate_open_connections{service}`` (every
  connection the process's server holds, idle and in its TLS handshake included:
  `blindgate.net.serving.open_connections`, against its ``max_connections`` cap);
- one structured JSON log line (`blindgate.logs`), whatever the outcome — payments, refunds,
  cancels, inquiries, refusals, bad input, health checks: ``request_id`` (made here, also
  sent back as ``X-Request-Id``), method, route, HTTP status, the answer's ``resultCode`` and
  ``resultStatus``, and the time taken in ms;
- ``GET /metrics``: the service's own metrics (if it has a ``/metrics``) followed by these
  and by any ``collectors`` given (the gateway's outbox depth and ledger postings);
- ``GET /openapi.json``: the service's OpenAPI document (`blindgate.api.openapi`).

No personal value can reach a label or a log line: the route is one of the service's known
paths (anything else is ``other``; an absolute-form target ``https://host/path``, as the
official SDK sends, counts as its path), the result code one of `blindgate.api.results`'
(anything else ``other``), and nothing of a request's body, query or headers is kept. The
result codes come from the caller (``result_codes``: the payment path's contract, through
`blindgate.api.observe`); a service without them labels every answer ``other``. The
request id is made here, never taken from the caller, who could put anything in it.

With ``blindgate gateway --workers N`` each worker keeps its own metrics (a scrape sees one).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Collection, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blindgate.net.serving import open_connections

METRICS_PATH, OPENAPI_PATH = "/metrics", "/openapi.json"
OTHER = "other"
MAX_PARSED_ANSWER = 64 * 1024  # a signed answer is a few hundred bytes; bigger ones are not read
BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

log = logging.getLogger("blindgate.requests")


class Observed:
    """The wrapped ASGI app; see the module docstring. ``state`` is the wrapped app's."""

    def __init__(
        self,
        app: ASGIApp,
        service: str,
        routes: Iterable[str],
        openapi: dict[str, Any] | None = None,
        collectors: Iterable[Collector] = (),
        result_codes: Collection[str] = (),
    ) -> None:
        self.app, self.service = app, service
        self.result_codes = frozenset(result_codes)
        self.routes = frozenset(routes) | {METRICS_PATH, OPENAPI_PATH, "/health"}
        self.openapi = json.dumps(openapi, indent=2).encode() if openapi is not None else None
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "blindgate_http_requests",
            "requests by route, method, HTTP status and AMS result code",
            ["service", "route", "method", "status", "result_code"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "blindgate_http_request_seconds",
            "time to answer, by route",
            ["service", "route"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "blindgate_http_requests_in_progress", "requests open now", ["service"], registry=self.registry
        )
        for collector in (_OpenConnections(service), *collectors):
            self.registry.register(collector)
        # Label children, made once: `labels()` costs more than the increment it leads to.
        self._open = self.in_progress.labels(service)
        self._counted: dict[tuple[str, str, str, str], Any] = {}
        self._timed: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:  # app.state and the like are the wrapped app's
        return getattr(self.app, name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self.route_of(scope["path"])
        if scope["method"] == "GET" and route == OPENAPI_PATH and self.openapi is not None:
            await _send_body(send, 200, self.openapi, b"application/json")
            self._record(scope, route, 200, None, time.perf_counter(), _request_id())
            return
        await self._answer(scope, receive, send, route)

    def route_of(self, path: str) -> str:
        for scheme in ("https://", "http://"):
            if path.startswith(scheme):
                rest = path[len(scheme) :]
                path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        return path if path in self.routes else OTHER

    async def _answer(self, scope: Scope, receive: Receive, send: Send, route: str) -> None:
        started, request_id = time.perf_counter(), _request_id()
        seen: dict[str, Any] = {"status": 500, "body": [], "size": 0}
        metrics = scope["method"] == "GET" and route == METRICS_PATH

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                if metrics:  # the body grows below: the length is set again
                    headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
                    seen["start"] = {**message, "headers": headers}
                    return
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                seen["size"] += len(chunk)
                if seen["size"] <= MAX_PARSED_ANSWER:
                    seen["body"].append(chunk)
                if metrics:
                    if not message.get("more_body", False):
                        await self._send_metrics(send, seen)
                    return
            await send(message)

        self._open.inc()
        try:
            await self.app(scope, receive, watch)
        finally:
            self._open.dec()
            code = (
                _result_code(seen["body"], self.result_codes) if seen["size"] <= MAX_PARSED_ANSWER else None
            )
            self._record(scope, route, seen["status"], code, started, request_id)

    async def _send_metrics(self, send: Send, seen: dict[str, Any]) -> None:
        """The wrapped app's own metrics (when it serves them), then these."""
        own = b"".join(seen["body"]) if seen["status"] == 200 else b""
        await _send_body(send, 200, own + generate_latest(self.registry), b"text/plain; version=0.0.4")
        seen["status"] = 200

    def _record(
        self,
        scope: Scope,
        route: str,
        status: int,
        code: tuple[str, str] | None,
        started: float,
        request_id: str,
    ) -> None:
        elapsed = time.perf_counter() - started
        result_code, result_status = code or ("-", "-")
        method = scope["method"] if scope["method"] in {"GET", "POST", "HEAD"} else OTHER
        key = (route, method, str(status), result_code)
        counted = self._counted.get(key)
        if counted is None:  # label values come from fixed sets: the cache stays small
            counted = self._counted[key] = self.requests.labels(self.service, *key)
        counted.inc()
        timed = self._timed.get(route)
        if timed is None:
            timed = self._timed[route] = self.seconds.labels(self.service, route)
        timed.observe(elapsed)
        log.info(
            "request",
            extra={
                "service": self.service,
                "request_id": request_id,
                "method": method,
                "route": route,
                "http_status": status,
                "result_code": result_code,
                "result_status": result_status,
                "duration_ms": round(elapsed * 1000, 3),
            },
        )


class _OpenConnections(Collector):
    """``blindgate_open_connections``: read from the server when scraped (none outside one)."""

    def __init__(self, service: str) -> None:
        self.service = service

    def collect(self) -> Iterable[Metric]:
        count = open_connections()
        if count is None:
            return
        family = GaugeMetricFamily(
            "blindgate_open_connections", "connections the server holds open now", labels=["service"]
        )
        family.add_metric([self.service], count)
        yield family


def _request_id() -> str:
    return uuid.uuid4().hex


def _result_code(chunks: list[bytes], known: frozenset[str]) -> tuple[str, str] | None:
    """(resultCode, resultStatus) of a signed JSON answer, if it is one with a known code."""
    body = b"".join(chunks)
    if not body.startswith(b"{"):
        return None
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    outcome = answer.get("result") if isinstance(answer, dict) else None
    if not isinstance(outcome, dict):
        return None
    code, status = outcome.get("resultCode"), outcome.get("resultStatus")
    return (
        str(code) if code in known else OTHER,
        str(status) if status in {"S", "F", "U"} else OTHER,
    )


async def _send_body(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
