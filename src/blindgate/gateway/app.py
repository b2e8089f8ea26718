"""The gateway as an ASGI app: `create_gateway_app`.

Acquirer-facing: the AMS paths (`blindgate.api.models.ACQUIRER_PATHS`), called by the
acquirers' agents with Ed25519 signatures (RSA256 is accepted too, from a partner's
published RSA key). Every answer is HTTP 200 with a signed body, business errors and bad
input included (status F with the AMS code, nothing stored); an unexpected failure answers
UNKNOWN_EXCEPTION (status U: inquire), never a stack trace. ``GET /health`` and
``GET /metrics`` (Prometheus; labels are operations and result codes only).

Logs carry ids, codes and exception class names: never a body, a header value or a field.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from blindgate.api.bodies import BODY_TIMEOUT_S, read_body, refuse, replaying
from blindgate.api.calls import network_client, pinned_client
from blindgate.api.fields import personal_in_clear
from blindgate.api.models import (
    CANCEL_PATH,
    INQUIRY_PATH,
    INQUIRY_REFUND_PATH,
    MAX_BODY_BYTES,
    ORDER_CODE_RESULT_PATH,
    ORDER_CODE_SCAN_PATH,
    PAY_PATH,
    REFUND_PATH,
    parse_json_object,
)
from blindgate.api.network import ACQUIRER, WALLET, Network, Partner
from blindgate.api.results import ApiError, result
from blindgate.api.signed import digest_of_request, signed_response, verify_request
from blindgate.crypto.errors import UnknownKey
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519, VerifyingKey
from blindgate.gateway.calls import PartnerCaller
from blindgate.gateway.cancels import Cancels
from blindgate.gateway.context import PaymentContext, utcnow
from blindgate.gateway.errors import GatewayConfigError
from blindgate.gateway.fx import RateBook
from blindgate.gateway.notifier import Notifier, running
from blindgate.gateway.order_codes import OrderCodes
from blindgate.gateway.pay import Pay
from blindgate.gateway.refunds import Refunds
from blindgate.gateway.repository import Repository
from blindgate.storage.engine import open_engine
from blindgate.storage.migrate import open_store
from blindgate.storage.offload import Offload
from blindgate.storage.retention import Purger

log = logging.getLogger("blindgate.gateway")

Operation = Callable[[Partner, dict[str, Any]], Awaitable[dict[str, Any]]]

# How long one store statement may wait on a lock another connection holds (an operator's
# session, a day being closed) before the request fails U: it waits on a store thread, so the
# other requests go on meanwhile (`blindgate.storage.offload`).
STORE_TIMEOUT_S = 10.0


def create_gateway_app(
    network: Network,
    keys: KeyStore,
    database_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], datetime] = utcnow,
    notify: bool = True,
    require_sealed: bool = True,
    store_timeout_s: float = STORE_TIMEOUT_S,
) -> Starlette:
    """The gateway service. ``keys`` is the gateway's signing-only key store.

    ``transport`` replaces the network under the gateway's HTTP client (tests, benchmarks);
    ``notify`` False runs no background loop (notifications, order-code expiry, the retention
    purge): tests drive them;
    ``require_sealed`` False (benchmark and test code only: no file or command sets it) accepts
    payer fields in clear, to measure against agents that seal nothing; ``store_timeout_s`` bounds
    each statement's wait on another connection's lock (`blindgate.storage.open_engine`).
    """
    if "seal" in keys.kinds or "pseudonym" in keys.kinds:
        raise GatewayConfigError("the gateway must hold no sealing or pseudonym key (create it signing_only)")
    # Created, or upgraded to this release's schema (with no time limit: a migration may be
    # long); then served with WAL checkpoints and every statement bounded, off the event loop.
    open_store(database_url).dispose()
    engine = open_engine(database_url, checkpoints=True, lock_timeout_s=store_timeout_s)
    db = Offload(engine)
    client = network_client(200, transport)
    # An agent with a pinned certificate gets a client that trusts it alone (not with a
    # stand-in transport: tests and benchmarks route in process, with no TLS to check).
    pinned = {
        partner.party_id: pinned_client(partner.tls_cert, 200)
        for partner in network.partners
        if partner.tls_cert and transport is None
    }
    caller = PartnerCaller(network.gateway.party_id, keys, client, pinned)
    rates = RateBook.load(network.gateway.rates)
    context = PaymentContext(network, Repository(engine), db, caller, clock)
    cancels = Cancels(context)
    pay, refunds = Pay(context, rates, cancels, require_sealed), Refunds(context)
    order_codes = OrderCodes(context, pay, cancels, rates)
    notifier = Notifier(network, db, caller, clock)
    purger = Purger(db, network.gateway.retention, clock)  # forgets ended payments' payer data
    signing_key, key_version = keys.signing_key(ED25519)
    metrics = _Metrics()
    # The order-code operations wrap pay, inquiry and cancel: an order code not yet scanned has
    # no payment row; every other request goes straight to `Pay`, `Cancels` or `Refunds`.
    operations: dict[str, Operation] = {
        PAY_PATH: order_codes.pay,
        INQUIRY_PATH: order_codes.inquiry,
        CANCEL_PATH: order_codes.cancel,
        REFUND_PATH: refunds.refund,
        INQUIRY_REFUND_PATH: refunds.inquiry,
        ORDER_CODE_SCAN_PATH: order_codes.scan,
        ORDER_CODE_RESULT_PATH: order_codes.pay_result,
    }
    # Who may call each path: the wallet-facing ones are signed by wallets' agents.
    callers = {path: WALLET if path in WALLET_FACING else ACQUIRER for path in operations}

    def lookup_for(path: str) -> Callable[[str, str, int], VerifyingKey]:
        def lookup(client_id: str, algorithm: str, version: int) -> VerifyingKey:
            partner = network.by_client_id(client_id)
            if partner is None or partner.role != callers[path]:
                raise UnknownKey("unknown client id")
            return partner.keys.verifying_key(algorithm, version)

        return lookup

    def checked(body: dict[str, Any]) -> dict[str, Any]:
        """Defence in depth: whatever a partner's field policy says, payer data arrives sealed."""
        personal = personal_in_clear(body) if require_sealed else None
        if personal is not None:
            raise ApiError("PARAM_ILLEGAL", f"{personal} is personal data and must arrive sealed")
        return body

    async def answer(path: str, headers: Headers, body: bytes) -> Response:
        """One signed operation: verify, run, sign the answer (every outcome is HTTP 200)."""
        started = time.perf_counter()
        client_id = headers.get("client-id", "")
        try:
            client_id = verify_request(headers, path, body, lookup_for(path), network.gateway.clock_skew_s)
            partner = network.by_client_id(client_id)
            assert partner is not None
            payload = await operations[path](partner, checked(parse_json_object(body)))
        except ApiError as error:
            payload = error.body()
        except Exception as exc:  # the outcome may be unknown: say U, never show a trace
            log.error("%s failed: %s", path, type(exc).__name__)
            payload = {"result": result("UNKNOWN_EXCEPTION")}
        code = payload["result"]["resultCode"]
        metrics.observe(path.rsplit("/", 1)[-1], code, time.perf_counter() - started)
        if network.by_client_id(client_id) is None:
            client_id = network.gateway.party_id  # never echo an unknown client id back
        return signed_response(
            path, payload, client_id, signing_key, key_version, digest_of_request(headers, path, body)
        )

    async def endpoint(request: Request) -> Response:
        """The routed way in (a mounted app, a root path): the same answer."""
        return await answer(request.url.path, request.headers, await request.body())

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def metrics_endpoint(_: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            if notify:
                async with running(notifier.run, order_codes.sweep, purger.run):
                    yield
            else:
                yield
        finally:
            for each in (client, *pinned.values()):
                await each.aclose()
            db.close()
            engine.dispose()

    routes = [Route(path, endpoint, methods=["POST"]) for path in operations]
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = _Gateway(answer, frozenset(operations), routes=routes, lifespan=lifespan)
    app.state.pay, app.state.refunds, app.state.cancels = pay, refunds, cancels
    app.state.notifier, app.state.engine, app.state.order_codes = notifier, engine, order_codes
    app.state.purger = purger
    return app


WALLET_FACING = (ORDER_CODE_SCAN_PATH, ORDER_CODE_RESULT_PATH)

Answer = Callable[[str, Headers, bytes], Awaitable[Response]]


class _Gateway(Starlette):
    """Starlette, with the signed operations' POSTs taken straight to their answer.

    Every payment comes this way, and the operations need none of what Starlette adds
    (routing, error middleware, a Request object): `answer` catches every failure itself.
    Skipping it saves about 0.05 ms of CPU a payment. Anything else (GET /health, another
    method, a root path) goes through Starlette's routes, which reach the same `answer`.
    Every request's body is read first, within bounds (`blindgate.api.bodies`).
    """

    def __init__(self, answer: Answer, paths: frozenset[str], **starlette: Any) -> None:
        super().__init__(**starlette)
        self._answer, self._paths = answer, paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        body = await read_body(scope, receive, MAX_BODY_BYTES, BODY_TIMEOUT_S)
        if isinstance(body, int):
            await refuse(send, body)
        elif body is None:  # the client went away: nobody to answer
            return
        elif scope["method"] == "POST" and scope["path"] in self._paths and not scope.get("root_path"):
            response = await self._answer(scope["path"], Headers(scope=scope), body)
            await response(scope, receive, send)
        else:
            await super().__call__(scope, replaying(body, receive), send)


class _Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "blindgate_gateway_requests",
            "requests by operation and result code",
            ["operation", "result_code"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "blindgate_gateway_request_seconds",
            "time to answer, by operation",
            ["operation"],
            registry=self.registry,
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1, 5),
        )

    def observe(self, operation: str, code: str, seconds: float) -> None:
        self.requests.labels(operation, code).inc()
        self.seconds.labels(operation).observe(seconds)


def engine_of(app: Starlette) -> sa.Engine:
    engine: sa.Engine = app.state.engine
    return engine


def load_gateway_app(network_file: Path, keys_dir: Path, database_url: str) -> Starlette:
    from blindgate.api.network import load_network

    return create_gateway_app(load_network(network_file), KeyStore(keys_dir), database_url)
