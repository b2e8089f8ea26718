"""An in-process blindgate network for tests: every party an ASGI app, wired by host name.

Gateway, both agents, the reference wallet backend and the reference acquirer's notification
endpoint run in this process behind one httpx transport that routes by host, so a test
drives the real code paths (signatures, sealing, storage) with no sockets.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.types import ASGIApp

from blindgate.agent.app import Backend, create_acquirer_agent_app, create_wallet_agent_app
from blindgate.agent.journal import Journal
from blindgate.agent.vouched import PartnersLog
from blindgate.api.network import Network, network_document, parse_network
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.gateway.app import create_gateway_app
from blindgate_testbed.partners.acquirer import NOTIFY_PATH, NotificationBook, create_acquirer_app
from blindgate_testbed.partners.signed_http import PartnerKeys
from blindgate_testbed.partners.wallet import APP_SCAN_PATH, OrderCodeScanner, WalletBook, create_wallet_app
from blindgate_testbed.plaintext import PASS_THROUGH
from blindgate_testbed.population import Customer, Wallet

GATEWAY, WALLET_ID, ACQUIRER_ID = "GATEWAY", "WALLET_KR", "ACQ_SG"
SDK_CLIENT = "SDK_MERCHANT_1"
PAYER = Customer(
    WALLET_ID,
    "KRC0000001",
    "Kim Min-jun",
    "+82-10-5555-0101",
    "minjun.kim@example.kr",
    "900101-1234567",
    "dev-a1b2c3d4",
    "10.20.30.40",
    "12 Sejong-daero, Seoul",
    "2811112222333344",
    5_000_000,
)
POOR = Customer(
    WALLET_ID,
    "KRC0000002",
    "Lee Seo-yeon",
    "+82-10-5555-0202",
    "seoyeon.lee@example.kr",
    "920202-2234567",
    "dev-e5f6a7b8",
    "10.20.30.41",
    "7 Teheran-ro, Seoul",
    "2899998888777766",
    100,
)


class Clock:
    """The gateway's clock, moved by the test (expiry without waiting)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class Router(httpx.AsyncBaseTransport):
    """Routes each request to the in-process app named by its host."""

    def __init__(self) -> None:
        self.apps: dict[str, httpx.ASGITransport] = {}
        self.down: set[str] = set()
        self.seen: list[tuple[str, bytes, bytes]] | None = None  # (URL, request, answer) when set

    def add(self, host: str, app: ASGIApp) -> None:
        self.apps[host] = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self.down:
            raise httpx.ConnectError("down (test)", request=request)
        response = await self.apps[host].handle_async_request(request)
        if self.seen is not None:
            await response.aread()
            sent = request.content if hasattr(request, "_content") else b"<streamed>"
            self.seen.append((str(request.url), sent, response.content))
        return response


class LoseAnswers(httpx.AsyncBaseTransport):
    """The partner does the work, but its answer on ``path`` is lost on the way back (a timeout)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: str) -> None:
        self.inner, self.path = inner, path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.url.path == self.path:
            raise httpx.ReadTimeout("answer lost (test)", request=request)
        return response


@contextmanager
def answers_lost(router: Router, host: str, path: str) -> Iterator[None]:
    """While the block runs, ``host`` acts on ``path`` but its answers never arrive."""
    inner = router.apps[host]
    router.apps[host] = LoseAnswers(inner, path)  # type: ignore[assignment]
    try:
        yield
    finally:
        router.apps[host] = inner


class HoldRequests(httpx.AsyncBaseTransport):
    """Requests on ``path`` wait until ``release`` is set, at the partner's door or, with
    ``acted``, after the partner has acted, on the answer's way back; ``reached`` is set when
    the first one gets there (to run something else meanwhile)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, path: str, acted: bool) -> None:
        self.inner, self.path, self.acted = inner, path, acted
        self.reached, self.release = asyncio.Event(), asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != self.path:
            return await self.inner.handle_async_request(request)
        response = await self.inner.handle_async_request(request) if self.acted else None
        self.reached.set()
        await self.release.wait()
        return response or await self.inner.handle_async_request(request)


@contextmanager
def requests_held(router: Router, host: str, path: str, acted: bool = False) -> Iterator[HoldRequests]:
    """While the block runs, requests to ``host`` on ``path`` wait for the holder's release
    (before the partner acts, or after with ``acted``)."""
    inner = router.apps[host]
    holder = HoldRequests(inner, path, acted)
    router.apps[host] = holder  # type: ignore[assignment]
    try:
        yield holder
    finally:
        router.apps[host] = inner


@dataclass
class LocalNetwork:
    network: Network
    router: Router
    merchant_key: rsa.RSAPrivateKey
    wallet_book: WalletBook
    notifications: NotificationBook
    gateway_app: Any
    root: Path
    agent_keys: dict[str, KeyStore] | None = None  # the agents' own key stores, by party
    wallet_backend_key: rsa.RSAPrivateKey | None = None  # signs the wallet backend's calls to its agent

    async def sdk(
        self,
        path: str,
        body: dict[str, Any],
        *,
        client_id: str = SDK_CLIENT,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> dict[str, Any]:
        """Call the acquirer's agent as the official SDK does (RSA256, absolute-form target)."""
        payload = raw if raw is not None else encode(body)
        signed = request_headers(path, payload, client_id, self.merchant_key, 1)
        signed.update(headers or {})
        async with httpx.AsyncClient(transport=self.router) as client:
            response = await client.post(f"https://a1-agent.test{path}", content=payload, headers=signed)
        assert response.status_code == 200
        answer: dict[str, Any] = json.loads(response.content)
        return answer

    async def app_scan(self, payment_code: str, code_value: str) -> dict[str, Any]:
        """The payer's wallet app scans a merchant's order code (at its wallet backend)."""
        body = {"paymentCode": payment_code, "codeValue": code_value}
        async with httpx.AsyncClient(transport=self.router) as client:
            response = await client.post("http://w1-backend.test" + APP_SCAN_PATH, json=body)
        assert response.status_code == 200
        answer: dict[str, Any] = response.json()
        return answer


def order_code_body(request_id: str, value: int = 1000, **extra: Any) -> dict[str, Any]:
    """What the official SDK's OrderCodePaymentRequest sends (no payer: the payer scans the code)."""
    return {
        "productCode": "IN_STORE_PAYMENT",
        "paymentRequestId": request_id,
        "paymentAmount": {"currency": "SGD", "value": str(value)},
        "paymentMethod": {"paymentMethodType": "CONNECT_WALLET"},
        "paymentFactor": {"inStorePaymentScenario": "OrderCode"},
        "order": {
            "referenceOrderId": request_id,
            "orderDescription": "coffee",
            "orderAmount": {"currency": "SGD", "value": str(value)},
            "merchant": {
                "referenceMerchantId": "M1",
                "merchantMCC": "5812",
                "merchantName": "Kopi",
                "store": {"referenceStoreId": "S1", "storeName": "Kopi Bugis", "storeMCC": "5812"},
            },
            "env": {"storeTerminalId": "T1"},
        },
        "paymentNotifyUrl": "http://a1-backend.test" + NOTIFY_PATH,
        **extra,
    }


def code_of_answer(answer: dict[str, Any]) -> str:
    """The order code in an order-code pay answer (what the terminal shows as a QR code)."""
    value: str = answer["orderCodeForm"]["codeDetails"][0]["codeValue"]
    return value


def pay_body(
    request_id: str, value: int = 1000, code: str = PAYER.payment_code, **extra: Any
) -> dict[str, Any]:
    return {
        "productCode": "IN_STORE_PAYMENT",
        "paymentRequestId": request_id,
        "paymentAmount": {"currency": "SGD", "value": str(value)},
        "paymentMethod": {"paymentMethodType": "CONNECT_WALLET", "paymentMethodId": code},
        "paymentFactor": {"inStorePaymentScenario": "PaymentCode"},
        "order": {
            "referenceOrderId": request_id,
            "orderDescription": "coffee",
            "orderAmount": {"currency": "SGD", "value": str(value)},
            "merchant": {"referenceMerchantId": "M1", "merchantMCC": "5812", "merchantName": "Kopi"},
            "buyer": {"buyerPhoneNo": PAYER.phone, "buyerEmail": PAYER.email},
            "env": {"clientIp": PAYER.ip, "deviceId": PAYER.device_id},
        },
        "paymentNotifyUrl": "http://a1-backend.test" + NOTIFY_PATH,
        **extra,
    }


def build(
    root: Path,
    database_url: str | None = None,
    risk: dict[str, int] | None = None,
    plaintext: bool = False,
    fee_rates: tuple[str, str] = ("0", "0"),
    business_day: dict[str, str] | None = None,
    clock: Callable[[], datetime] | None = None,
    agent_clock: Callable[[], float] | None = None,
    partners_log: PartnersLog | None = None,
    store_timeout_s: float | None = None,
    retention: dict[str, int] | None = None,
) -> LocalNetwork:
    """The network on an in-process router; ``fee_rates`` = (wallet share, merchant discount rate).
    ``plaintext``: PETs off, for comparison (`blindgate_testbed.plaintext`)."""
    policy = PASS_THROUGH if plaintext else None
    gateway_keys = KeyStore.create(root / "gateway-keys", GATEWAY, signing_only=True)
    wallet_keys = KeyStore.create(root / "wallet-agent-keys", WALLET_ID)
    acquirer_keys = KeyStore.create(root / "acquirer-agent-keys", ACQUIRER_ID)
    document = network_document(
        {
            "party_id": GATEWAY,
            "url": "http://gateway.test",
            "keys": gateway_keys.public_bundle(),
            "wallet_timeout_s": 2.0,
            "business_day": business_day or {},
            "retention": retention or {},
        },
        [
            {
                "party_id": WALLET_ID,
                "role": "wallet",
                "client_id": "WALLET_KR_AGENT",
                "currency": "KRW",
                "code_prefixes": ["28"],
                "agent_url": "http://w1-agent.test",
                "keys": wallet_keys.public_bundle(),
                "risk": risk or {},
                "fee_rate": fee_rates[0],
            },
            {
                "party_id": ACQUIRER_ID,
                "role": "acquirer",
                "client_id": "ACQ_SG_AGENT",
                "currency": "SGD",
                "agent_url": "https://a1-agent.test",
                "keys": acquirer_keys.public_bundle(),
                "fee_rate": fee_rates[1],
            },
        ],
    )
    (root / "network.json").write_text(json.dumps(document))
    network = parse_network(document)
    router = Router()
    backend_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    merchant_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Static payment codes (not the reference wallet's one-time codes): these tests pay many
    # times with one fixed code; one-time codes are the wallet's own tests' (tests/testbed).
    wallet = Wallet(WALLET_ID, "KR Pay", "KRW", "KR", "28", (PAYER, POOR))
    book = WalletBook.create(root / "wallet.db", wallet, one_time_codes=False)
    backend_keys = PartnerKeys("W1_BACKEND", backend_key, wallet_keys.rsa_key().public_key())
    scanner = OrderCodeScanner("http://w1-agent.test", backend_keys, transport=router)
    router.add("w1-backend.test", create_wallet_app(book, backend_keys, scanner=scanner))
    notifications = NotificationBook(root / "notifications.db")
    router.add(
        "a1-backend.test",
        create_acquirer_app(
            notifications, PartnerKeys(SDK_CLIENT, merchant_key, acquirer_keys.rsa_key().public_key())
        ),
    )
    router.add(
        "w1-agent.test",
        create_wallet_agent_app(
            network,
            wallet_keys,
            Backend("W1_BACKEND", backend_key.public_key(), "http://w1-backend.test"),
            policy,
            journal=Journal(root / "wallet-agent-journal.db"),
            transport=router,
            partners_log=partners_log,
            **({"clock": agent_clock} if agent_clock is not None else {}),
        ),
    )
    router.add(
        "a1-agent.test",
        create_acquirer_agent_app(
            network,
            acquirer_keys,
            Backend(SDK_CLIENT, merchant_key.public_key()),
            policy,
            journal=Journal(root / "acquirer-agent-journal.db"),
            transport=router,
            partners_log=partners_log,
            **({"clock": agent_clock} if agent_clock is not None else {}),
        ),
    )
    gateway_app = create_gateway_app(
        network,
        gateway_keys,
        database_url or f"sqlite:///{root / 'gateway.db'}",
        transport=router,
        notify=False,
        require_sealed=not plaintext,
        **({"clock": clock} if clock is not None else {}),
        **({"store_timeout_s": store_timeout_s} if store_timeout_s is not None else {}),
    )
    router.add("gateway.test", gateway_app)
    agent_keys = {WALLET_ID: wallet_keys, ACQUIRER_ID: acquirer_keys}
    return LocalNetwork(
        network, router, merchant_key, book, notifications, gateway_app, root, agent_keys, backend_key
    )


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)
