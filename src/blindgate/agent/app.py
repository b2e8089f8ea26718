"""The partner agents as ASGI apps: `create_acquirer_agent_app` and `create_wallet_agent_app`.

The acquirer's agent stands where Alipay+ stood for the acquirer's unchanged SDK:
it serves the AMS paths over TLS, verifies the SDK's RSA256 signature, finds the wallet
from the payment code's prefix (``paymentMethod.customerBelongsTo``), seals every payer
field the policy does not name to that wallet (context ``<acquirer>:<paymentRequestId>``),
adds ``sealedDigest`` (its keyed PRF of the sealed values: the gateway's idempotency check,
blind), and calls the gateway with Ed25519. On the way back it opens what was sealed to it
(the payer's customerId) and signs with the RSA key the SDK trusts. It also relays the
gateway's payment notifications to the acquirer backend's ``paymentNotifyUrl``.

The wallet's agent stands where Alipay+ stood for the wallet backend: it verifies the
gateway's Ed25519 signature, opens what was sealed to the wallet, calls the backend's
Alipay+ wallet-side API in clear with RSA256, and answers with every payer field sealed to
the acquirer and ``customerPseudonym``: the wallet's keyed PRF of its customer id, the only
handle on the payer the gateway gets.

A merchant-presented order code names no payer: the acquirer's agent seals nothing and refuses
payer fields; the payer's wallet agent, asked by its backend (userInitiatedPay), claims the
code at the gateway under the payer's pseudonym, has the backend debit, and reports the
answer sealed as above (docs/agent.md).

What leaks to whom: the gateway sees routing data, amounts, merchant data named clear by the
policy, ciphertext and the pseudonym; each partner sees what it sees with Alipay+ today.
What is sealed is the agent's own field policy (its partner's configuration, never the
network file's): nothing the operator distributes can make an agent send a payer field in clear.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from blindgate.agent.journal import FRESH_S, ContextReused, Journal
from blindgate.agent.policy import (
    FieldPolicy,
    leaves,
    open_message,
    policy_name,
    seal_message,
    sealed_digest,
    without_sealed,
)
from blindgate.agent.rotation import SealKeyRotation
from blindgate.agent.vouched import GatewayKeys, PartnersLog
from blindgate.api.bodies import bounded_bodies
from blindgate.api.calls import ANSWERED_IDS, NoAnswer, Signer, network_client, pinned_client, signed_call
from blindgate.api.contexts import (
    RISK_PURPOSE,
    SEALED_AT_FIELD,
    SEALED_DIGEST_FIELD,
    pseudonym_scope,
    seal_context,
)
from blindgate.api.fields import is_personal
from blindgate.api.models import (
    ACQUIRER_PATHS,
    MAX_CODE_VALUE_CHARS,
    MAX_URL_CHARS,
    NOTIFY_AGENT_PATH,
    ORDER_CODE_RESULT_PATH,
    ORDER_CODE_SCAN_PATH,
    ORDER_CODE_SCENARIO,
    PAY_PATH,
    ROUTING_FIELD,
    WALLET_PATHS,
    WALLET_PAY_PATH,
    OrderCodeRequest,
    PayRequest,
    check_currencies,
    in_store_scenario,
    parse_json_object,
    text,
)
from blindgate.api.network import ACQUIRER, WALLET, Network, Partner
from blindgate.api.results import ApiError, result
from blindgate.api.signed import digest_of_request, signed_response, verify_request
from blindgate.crypto.errors import UnknownKey
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import RecipientKey
from blindgate.crypto.signatures import ED25519, RSA256, VerifyingKey
from blindgate.ledger.calendar import Cutoff
from blindgate.translog.errors import TranslogError

log = logging.getLogger("blindgate.agent")

Handler = Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]]


async def verified(keys: PartnersLog | None, key: RecipientKey) -> RecipientKey:
    """What to seal to for ``key`` (the network file's key of a peer): once the transparency log
    vouches for it, the newest key the peer publishes there — a rotation reaches this agent
    through the log, with no new network file (``keys`` None: no log configured, ``key`` as it
    is). A key the log does not vouch for seals nothing: KEY_NOT_FOUND, with the reason in the
    agent's log."""
    if keys is not None:
        try:
            return await keys.anewest_sealing_key(key)
        except TranslogError as refusal:
            log.error("sealing key refused", extra={"partner": key.kid, "reason": str(refusal)})
            raise ApiError(
                "KEY_NOT_FOUND", "the peer's sealing key is not verified in the partners' transparency log"
            ) from None
    return key


@dataclass(frozen=True)
class Backend:
    """The partner's own system as the agent sees it: its client id and RSA public key (and URL).

    For an acquirer, ``client_id``/``public_key`` are the SDK client's (the merchant key);
    ``url`` is unused; notifications go to the ``paymentNotifyUrl`` that the merchant gave in
    its own pay request, else to ``notify_url``, the agent file's default (else none is sent).
    """

    client_id: str
    public_key: rsa.RSAPublicKey
    url: str = ""
    timeout_s: float = 10.0
    notify_url: str = ""
    tls_cert: str | None = None  # the backend's TLS certificate (PEM), trusted alone when given


class _Peer:
    """Signed JSON calls to the partner's own backend (RSA256), answers verified with its key."""

    def __init__(self, client: httpx.AsyncClient, signer: Signer) -> None:
        self.client, self.signer = client, signer

    async def call(
        self, url: str, path: str, payload: dict[str, Any], verify: VerifyingKey, timeout_s: float
    ) -> dict[str, Any]:
        return await signed_call(self.client, url, path, payload, self.signer, lambda _: verify, timeout_s)


def clients_for(
    network: Network, transport: httpx.AsyncBaseTransport | None, backend_cert: str | None = None
) -> tuple[httpx.AsyncClient, ...]:
    """(toward the backend, toward the gateway): one client, or a second one for the gateway
    that trusts its pinned certificate alone (not with a stand-in transport: no TLS there). The
    backend's client trusts ``backend_cert`` alone when given."""
    if backend_cert is not None and transport is None:
        backend: httpx.AsyncClient = pinned_client(backend_cert, 100)
    else:
        backend = network_client(100, transport)
    if network.gateway.tls_cert is None or transport is not None:
        return (backend,)
    return backend, pinned_client(network.gateway.tls_cert, 100)


class GatewayCaller:
    """Ed25519-signed calls from an agent to the gateway, answers verified with the gateway's key
    (one the partners' log vouches for, where the agent has one: `GatewayKeys`)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        network: Network,
        client_id: str,
        keys: KeyStore,
        gateway_keys: GatewayKeys,
    ) -> None:
        self.client, self.network, self.gateway_keys = client, network, gateway_keys
        self.signer = Signer(client_id, *keys.signing_key(ED25519))

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        gateway = self.network.gateway
        await self.gateway_keys.check()
        if not self.gateway_keys.any_vouched():  # no answer could be verified: send nothing
            raise ApiError("KEY_NOT_FOUND", "no gateway signing key is vouched for by the partners' log")
        return await signed_call(
            self.client,
            gateway.url + path,
            path,
            body,
            self.signer,
            lambda header: self.gateway_keys.verifying_key(header.algorithm, header.key_version),
            gateway.wallet_timeout_s + 5,
        )


def absolute_form_paths(app: ASGIApp) -> ASGIApp:
    """Read the path out of an absolute-form request target (``POST https://host/ams/...``).

    The official SDK sends one; uvicorn passes it through as the path, scheme and host
    included, which no route matches.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            for scheme in ("https://", "http://"):
                if path.startswith(scheme):
                    rest = path[len(scheme) :]
                    path = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
                    scope = {**scope, "path": path, "raw_path": path.encode()}
        await app(scope, receive, send)

    return wrapped


def _serve(
    handlers: dict[str, Handler],
    verify: Callable[[Request, bytes], str],
    sign: Callable[[str, dict[str, Any], bytes], Response],
    clients: tuple[httpx.AsyncClient, ...],
    partners_log: PartnersLog | None,
    gateway_keys: GatewayKeys,
    key_rotation: SealKeyRotation | None = None,
) -> Starlette:
    async def endpoint(request: Request) -> Response:
        path = request.url.path
        body = b""
        try:
            body = await request.body()
            await gateway_keys.check()  # before `verify` may look up one of them
            verify(request, body)
            payload = await handlers[path](parse_json_object(body), path)
        except ApiError as error:
            payload = error.body()
        except Exception as exc:
            log.error("%s failed: %s", path, type(exc).__name__)
            payload = {"result": result("UNKNOWN_EXCEPTION")}
        return sign(path, payload, digest_of_request(request.headers, path, body))

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        rotating = asyncio.create_task(key_rotation.run()) if key_rotation is not None else None
        try:
            yield
        finally:
            if rotating is not None:
                rotating.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rotating
            for client in clients:
                await client.aclose()

    async def verified(_: Request) -> Response:
        """Which peers' keys the transparency log vouched for (public data: for monitoring)."""
        found = partners_log.verified_keys() if partners_log is not None else []
        return JSONResponse([{"partner": k.partner, "kind": k.kind, "version": k.version} for k in found])

    routes = [Route(path, endpoint, methods=["POST"]) for path in handlers]
    routes += [Route("/health", health, methods=["GET"]), Route("/keys/verified", verified, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan)


def create_acquirer_agent_app(
    network: Network,
    keys: KeyStore,
    backend: Backend,
    policy: FieldPolicy | None = None,
    *,
    journal: Journal,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    partners_log: PartnersLog | None = None,
    key_rotation: SealKeyRotation | None = None,
) -> ASGIApp:
    """The acquirer's agent: the SDK's AMS endpoint, toward the gateway (see module docstring).
    ``journal``: what it forwarded (`blindgate.agent.journal`); ``clock``: seconds, for seal times;
    ``partners_log``: the transparency log that must vouch for a wallet's key before a seal and
    for the gateway's signing keys (`blindgate.agent.vouched`);
    ``key_rotation``: the job that rotates this party's sealing key (`blindgate.agent.rotation`)."""
    policy = policy or FieldPolicy.load()
    me = network.partner(keys.party_id)
    if me is None or me.role != ACQUIRER:
        raise ValueError("the key store's party is not an acquirer of this network")
    gateway_keys = GatewayKeys(network, partners_log)
    clients = clients_for(network, transport, backend.tls_cert)
    ed_key, ed_version = keys.signing_key(ED25519)
    rsa_key, rsa_version = keys.signing_key(RSA256)
    toward_backend = _Peer(clients[0], Signer(backend.client_id, rsa_key, rsa_version))
    gateway = GatewayCaller(clients[-1], network, me.client_id, keys, gateway_keys)

    async def forward(body: dict[str, Any], path: str) -> dict[str, Any]:
        request_id = text(body, "paymentRequestId", required=False)
        if path == PAY_PATH and in_store_scenario(body) == ORDER_CODE_SCENARIO:
            body = _prepare_order_code(body)
        elif path == PAY_PATH:
            body = await _prepare_pay(body)
        else:
            _refuse_unknown_fields(body)
        unknown = {"result": result("PAYMENT_IN_PROCESS" if path == PAY_PATH else "UNKNOWN_EXCEPTION")}
        try:
            answer = await gateway.call(path, body)
        except NoAnswer:
            return unknown
        named = [name for name in ("paymentRequestId", "paymentId", "refundRequestId") if name in body]
        if any(answer.get(name, body[name]) != body[name] for name in named):
            log.warning("the gateway answered about another payment", extra={"path": path})
            return unknown
        return _opened(answer, answer.get("paymentRequestId", request_id))

    def _opened(message: dict[str, Any], request_id: object) -> dict[str, Any]:
        """``message`` with what was sealed to this acquirer opened, under the context of a payment
        this agent forwarded itself; without a sealed value, where it forwarded no such payment."""
        entry = journal.forwarded(request_id) if isinstance(request_id, str) else None
        if entry is None:
            return without_sealed(message)
        context = seal_context(me.party_id, entry.request_id, entry.sealed_at)
        return open_message(message, keys, me.party_id, context)

    def _refuse_unknown_fields(body: dict[str, Any]) -> None:
        """Inquiry, cancel and refund name a payment by ids: no wallet to seal to is known here,
        so a field the policy does not name clear is refused rather than sent in clear."""
        for field_path, value in leaves(body):
            if value is not None and not policy.is_clear(policy_name(field_path)):
                raise ApiError("PARAM_ILLEGAL", f"{policy_name(field_path)} is not accepted on this path")

    def _prepare_order_code(body: dict[str, Any]) -> dict[str, Any]:
        """A merchant-presented order code names no payer, so no wallet to seal to is known: a
        payer field is refused, never sent in clear; the merchant's free text (the description
        the SDK requires) stays here, as nothing can be sealed to a wallet not yet known."""
        request_id = text(body, "paymentRequestId")
        assert request_id is not None
        for field_path, value in leaves(body):
            name = policy_name(field_path)
            if value is not None and is_personal(name):
                raise ApiError("PARAM_ILLEGAL", f"{name} is not accepted on this path")
        OrderCodeRequest.parse(body)  # what the gateway would refuse is refused before it is journaled
        check_currencies(body, me.currency)
        journal.forwarding(request_id, None, _notify_url(body))
        return policy.clear_part(body)

    async def _prepare_pay(body: dict[str, Any]) -> dict[str, Any]:
        request_id = text(body, "paymentRequestId")
        method = body.get("paymentMethod")
        if not isinstance(method, dict):
            raise ApiError("PARAM_ILLEGAL", "paymentMethod is missing or not an object")
        code = text(method, "paymentMethodId")
        assert code is not None and request_id is not None
        wallet = network.wallet_for_code(code)
        if wallet is None:
            raise ApiError("INVALID_CODE", "no wallet in the network issues this payment code")
        routed = {**body, "paymentMethod": {**method, ROUTING_FIELD: wallet.party_id}}
        PayRequest.parse(routed)  # what the gateway would refuse is refused before it is journaled
        check_currencies(routed, me.currency)
        # A retry of this pay seals under the first one's context (its notify URL stays too).
        entry = journal.forwarding(request_id, int(clock()), _notify_url(body))
        assert entry.sealed_at is not None
        context = seal_context(me.party_id, request_id, entry.sealed_at)
        recipient = await verified(partners_log, wallet.keys.recipient_key)
        sealed, values = seal_message(routed, policy, recipient, context)
        sealed[SEALED_DIGEST_FIELD] = sealed_digest(keys.pseudonym_key(), request_id, values)
        sealed[SEALED_AT_FIELD] = entry.sealed_at
        return sealed

    def _notify_url(body: dict[str, Any]) -> str | None:
        """The merchant's own ``paymentNotifyUrl``: where this agent will deliver the payment's
        notification, whatever URL the gateway names later."""
        url = text(body, "paymentNotifyUrl", MAX_URL_CHARS, required=False)
        if url is None:
            return None
        target = urlsplit(url)
        if target.scheme not in ("http", "https") or not target.hostname or target.path in ACQUIRER_PATHS:
            raise ApiError(
                "PARAM_ILLEGAL", "paymentNotifyUrl is not an http(s) URL of a notification endpoint"
            )
        return url

    async def relay_notification(body: dict[str, Any], path: str) -> dict[str, Any]:
        """Deliver the gateway's notification of a payment this agent forwarded, to the URL its
        merchant gave (never one the gateway names), until the backend acknowledges one."""
        notification = body.get("notification")
        if not isinstance(notification, dict):
            raise ApiError("PARAM_ILLEGAL", "notification is missing")
        request_id = text(notification, "paymentRequestId")
        assert request_id is not None
        entry = journal.forwarded(request_id)
        if entry is None:
            raise ApiError("ORDER_NOT_EXIST", "this agent forwarded no such payment")
        if entry.notified:  # acknowledged already: nothing is opened or sent again
            return {"result": result("SUCCESS")}
        url = entry.notify_url or backend.notify_url
        if not url:
            raise ApiError("PARAM_ILLEGAL", "the merchant gave no notification address for this payment")
        opened = _opened(notification, request_id)
        try:
            answer = await toward_backend.call(
                url, urlsplit(url).path or "/", opened, backend.public_key, backend.timeout_s
            )
        except NoAnswer:
            return {"result": result("UNKNOWN_EXCEPTION", "the acquirer backend did not acknowledge")}
        if answer["result"].get("resultStatus") == "S":
            journal.notified(request_id)
        return answer

    def verify_sdk(request: Request, body: bytes) -> str:
        return _verify_backend(request, body, backend)

    def verify_gateway(request: Request, body: bytes) -> str:
        def lookup(client_id: str, algorithm: str, version: int) -> VerifyingKey:
            if client_id != network.gateway.party_id:
                raise UnknownKey("unknown client id")
            return gateway_keys.verifying_key(algorithm, version)

        return verify_request(request.headers, request.url.path, body, lookup, network.gateway.clock_skew_s)

    def sign(path: str, payload: dict[str, Any], answering: bytes) -> Response:
        if path == NOTIFY_AGENT_PATH:
            return signed_response(path, payload, me.client_id, ed_key, ed_version, answering)
        return signed_response(path, payload, backend.client_id, rsa_key, rsa_version, answering)

    handlers: dict[str, Handler] = dict.fromkeys(ACQUIRER_PATHS, forward)
    handlers[NOTIFY_AGENT_PATH] = relay_notification

    def verify(request: Request, body: bytes) -> str:
        return (verify_gateway if request.url.path == NOTIFY_AGENT_PATH else verify_sdk)(request, body)

    served = _serve(handlers, verify, sign, clients, partners_log, gateway_keys, key_rotation)
    return absolute_form_paths(bounded_bodies(served))


def create_wallet_agent_app(
    network: Network,
    keys: KeyStore,
    backend: Backend,
    policy: FieldPolicy | None = None,
    *,
    journal: Journal,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    partners_log: PartnersLog | None = None,
    key_rotation: SealKeyRotation | None = None,
) -> ASGIApp:
    """The wallet's agent: the gateway's wallet-side endpoint, toward the wallet backend; and
    the backend's userInitiatedPay (its customer scanned an order code), toward the gateway.
    ``journal``: what it executed (`blindgate.agent.journal`); ``clock``: seconds, for freshness;
    ``partners_log``: the transparency log that must vouch for an acquirer's key before a seal and
    for the gateway's signing keys (`blindgate.agent.vouched`);
    ``key_rotation``: the job that rotates this party's sealing key (`blindgate.agent.rotation`)."""
    policy = policy or FieldPolicy.load()
    me = network.partner(keys.party_id)
    if me is None or me.role != WALLET:
        raise ValueError("the key store's party is not a wallet of this network")
    gateway_keys = GatewayKeys(network, partners_log)
    clients = clients_for(network, transport, backend.tls_cert)
    ed_key, ed_version = keys.signing_key(ED25519)
    rsa_key, rsa_version = keys.signing_key(RSA256)
    toward_backend = _Peer(clients[0], Signer(backend.client_id, rsa_key, rsa_version))
    gateway = GatewayCaller(clients[-1], network, me.client_id, keys, gateway_keys)

    business_days = Cutoff(network.gateway.business_day_zone, network.gateway.business_day_cutoff)

    def pseudonym(customer_id: str, at: float) -> str:
        """The payer's risk pseudonym in its scope: this wallet, the business day of ``at``."""
        day = business_days.day_of(datetime.fromtimestamp(at, UTC))
        return keys.pseudonym(RISK_PURPOSE, pseudonym_scope(day, customer_id))

    def for_gateway(
        answer: dict[str, Any], recipient: RecipientKey, context: str, at: float
    ) -> dict[str, Any]:
        """The backend's answer as the gateway may see it: the payer's pseudonym (for the payment's
        business day, ``at``), the rest sealed to the acquirer's ``recipient`` key."""
        customer_id = answer.get("customerId")
        if isinstance(customer_id, str):
            answer["customerPseudonym"] = pseudonym(customer_id, at)
        sealed, _ = seal_message(answer, policy, recipient, context)
        return sealed

    def executed(body: dict[str, Any], path: str) -> tuple[Partner, str, float] | None:
        """The acquirer and seal context of the payment ``body`` names, as this agent recorded
        them: a pay records them (a context once, while fresh); anything else finds them, or
        None for a payment this agent never executed (a cancel of a pay that never came)."""
        payment_id = text(body, "paymentRequestId")
        assert payment_id is not None
        known = journal.executed(payment_id)
        if path == WALLET_PAY_PATH:
            acquirer = network.partner(text(body, "acquirerId") or "")
            acquirer_request = text(body, "acquirerPaymentRequestId")
            sealed_at = body.get(SEALED_AT_FIELD)
            if acquirer is None or acquirer.role != ACQUIRER or acquirer_request is None:
                raise ApiError("PARAM_ILLEGAL", "acquirerId names no acquirer of this network")
            if type(sealed_at) is not int:
                raise ApiError("PARAM_ILLEGAL", f"{SEALED_AT_FIELD} is missing or not an integer")
            context = seal_context(acquirer.party_id, acquirer_request, sealed_at)
            if known is None or known.context != context:
                if not -FRESH_S <= clock() - sealed_at <= FRESH_S:
                    raise ApiError("PARAM_ILLEGAL", "the sealed fields are too old to be opened")
                try:
                    known = journal.executing(payment_id, acquirer.party_id, context, clock())
                except ContextReused:
                    raise ApiError(
                        "REPEAT_REQ_INCONSISTENT", "these sealed fields were used for another payment"
                    ) from None
            return acquirer, context, known.created_at
        if known is None:
            return None
        acquirer = network.partner(known.acquirer_id)
        if acquirer is None or text(body, "acquirerId", required=False) not in (None, known.acquirer_id):
            raise ApiError("PARAM_ILLEGAL", "acquirerId is not the payment's acquirer")
        return acquirer, known.context, known.created_at

    async def handle(body: dict[str, Any], path: str) -> dict[str, Any]:
        recorded = executed(body, path)
        if recorded is not None:  # the acquirer's key is vouched for before the backend is asked
            recipient = await verified(partners_log, recorded[0].keys.recipient_key)
        if recorded is None:  # nothing to open, and nothing of the payer's may leave
            opened = without_sealed(body)
        else:
            opened = open_message(body, keys, me.party_id, recorded[1])
        # customerId toward the backend names whom to debit: only this agent sets it, for a scan
        # its own backend asked for (`scan`), never the gateway.
        for name in ("acquirerId", "acquirerPaymentRequestId", "paymentQuote", "customerId", SEALED_AT_FIELD):
            opened.pop(name, None)
        if isinstance(opened.get("paymentMethod"), dict):
            opened["paymentMethod"].pop(ROUTING_FIELD, None)
        try:
            answer = await toward_backend.call(
                backend.url + path, path, opened, backend.public_key, backend.timeout_s
            )
        except NoAnswer:
            answer = {
                "result": result("PAYMENT_IN_PROCESS" if path == WALLET_PAY_PATH else "UNKNOWN_EXCEPTION")
            }
        else:
            answer = for_gateway(answer, recipient, *recorded[1:]) if recorded else policy.clear_part(answer)
        # Name the request answered, under this agent's signature (`gateway.calls`: no replay).
        return {**answer, **{key: body[key] for key in ANSWERED_IDS if key in body}}

    async def scan(body: dict[str, Any], path: str) -> dict[str, Any]:
        """The backend's customer scanned an order code: claim it at the gateway under the
        customer's pseudonym, have the backend debit, report the answer (sealed) to settle."""
        code_value = text(body, "codeValue", MAX_CODE_VALUE_CHARS)
        customer_id = text(body, "customerId")
        assert code_value is not None and customer_id is not None
        scanned_at = clock()
        try:
            order = await gateway.call(
                ORDER_CODE_SCAN_PATH,
                {"codeValue": code_value, "customerPseudonym": pseudonym(customer_id, scanned_at)},
            )
        except NoAnswer:
            return {"result": result("UNKNOWN_EXCEPTION", "the network did not answer; scan again")}
        if order["result"].get("resultStatus") != "S":
            return {"result": order["result"]}
        acquirer = network.partner(text(order, "acquirerId") or "")
        acquirer_request = text(order, "acquirerPaymentRequestId")
        payment_id = text(order, "paymentRequestId")
        if acquirer is None or acquirer.role != ACQUIRER or acquirer_request is None or payment_id is None:
            raise ApiError("UNKNOWN_EXCEPTION", "the network's answer names no acquirer")
        context = seal_context(acquirer.party_id, acquirer_request)
        recipient = await verified(partners_log, acquirer.keys.recipient_key)
        try:
            journal.executing(payment_id, acquirer.party_id, context, scanned_at)
        except ContextReused:
            raise ApiError("UNKNOWN_EXCEPTION", "the network named an order already paid") from None
        shown = {name: order.get(name) for name in ("paymentAmount", "payToAmount", "order")}
        debit = {
            "paymentRequestId": payment_id,
            "productCode": order.get("productCode"),
            "paymentFactor": {"inStorePaymentScenario": ORDER_CODE_SCENARIO},
            "customerId": customer_id,
            **shown,
        }
        try:
            answer = await toward_backend.call(
                backend.url + WALLET_PAY_PATH, WALLET_PAY_PATH, debit, backend.public_key, backend.timeout_s
            )
        except NoAnswer:  # the gateway learns the outcome by asking the wallet (inquiry)
            return {"result": result("PAYMENT_IN_PROCESS"), "paymentRequestId": payment_id, **shown}
        report = for_gateway(answer, recipient, context, scanned_at)
        try:
            settled = await gateway.call(ORDER_CODE_RESULT_PATH, {**report, "paymentRequestId": payment_id})
        except NoAnswer:
            return {"result": result("PAYMENT_IN_PROCESS"), "paymentRequestId": payment_id, **shown}
        return {"result": settled["result"], "paymentRequestId": payment_id, **shown}

    def verify(request: Request, body: bytes) -> str:
        if request.url.path == ORDER_CODE_SCAN_PATH:
            return _verify_backend(request, body, backend)

        def lookup(client_id: str, algorithm: str, version: int) -> VerifyingKey:
            if client_id != network.gateway.party_id:
                raise UnknownKey("unknown client id")
            return gateway_keys.verifying_key(algorithm, version)

        return verify_request(request.headers, request.url.path, body, lookup, network.gateway.clock_skew_s)

    def sign(path: str, payload: dict[str, Any], answering: bytes) -> Response:
        if path == ORDER_CODE_SCAN_PATH:  # toward the backend, with the key it trusts
            return signed_response(path, payload, backend.client_id, rsa_key, rsa_version, answering)
        return signed_response(path, payload, me.client_id, ed_key, ed_version, answering)

    handlers: dict[str, Handler] = dict.fromkeys(WALLET_PATHS, handle)
    handlers[ORDER_CODE_SCAN_PATH] = scan
    return bounded_bodies(_serve(handlers, verify, sign, clients, partners_log, gateway_keys, key_rotation))


def _verify_backend(request: Request, body: bytes, backend: Backend) -> str:
    """Check a request the partner's own backend signed (RSA256, its client id and key)."""

    def lookup(client_id: str, algorithm: str, version: int) -> VerifyingKey:
        if client_id != backend.client_id or algorithm != RSA256:
            raise UnknownKey("unknown client id")
        return backend.public_key

    return verify_request(request.headers, request.url.path, body, lookup)
