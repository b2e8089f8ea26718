"""The acquirer's unchanged official-SDK client against a signed AMS endpoint on 127.0.0.9:443.

The SDK connects to port 443 of the URL's host and sends an absolute-form target; this
stand-in endpoint (TLS, RSA256 both ways) checks the client builds and signs what an agent
expects, and that it accepts a correctly signed answer and refuses a forged one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from blindgate.crypto.signatures import rsa_private_key_for_sdk, rsa_public_key_for_sdk
from blindgate_testbed.network import write_tls_certificate
from blindgate_testbed.partners.acquirer import AcquirerCallFailed, AcquirerClient, Shop
from blindgate_testbed.partners.signed_http import (
    PartnerKeys,
    Rejected,
    read_signed_json,
    signed_json_response,
)
from blindgate_testbed.population import generate_population
from tests.sdk_port import skip_unless_port_443_free

HOST = "127.0.0.9"
PATHS = ("pay", "inquiryPayment", "cancel", "refund", "inquiryRefund")


class AbsoluteFormPaths:
    """ASGI wrapper: ``https://host/path`` targets (as the SDK sends them) become ``/path``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("https://"):
            path = "/" + scope["path"].split("/", 3)[3]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    skip_unless_port_443_free(HOST)
    merchant, agent = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    keys = PartnerKeys("ACQ_CLIENT", agent, merchant.public_key())
    seen: list[dict[str, Any]] = []

    async def handle(request: Request) -> Response:
        try:
            body = await read_signed_json(request, keys)
            seen.append({"path": request.url.path, "body": body})
            payload = {"result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}}
            payload["paymentId"] = "G1"
        except Rejected as rejected:
            payload = {"result": {"resultCode": rejected.code, "resultStatus": "F", "resultMessage": "no"}}
        if body.get("paymentRequestId") == "FORGE":  # answer signed with the wrong key
            return await signed_json_response(request, payload, PartnerKeys("ACQ_CLIENT", merchant, agent))
        return await signed_json_response(request, payload, keys)

    app = Starlette(routes=[Route(f"/ams/api/v1/payments/{p}", handle, methods=["POST"]) for p in PATHS])
    key_path, cert_path = write_tls_certificate(HOST, tmp_path_factory.mktemp("tls"))
    server = uvicorn.Server(
        uvicorn.Config(
            AbsoluteFormPaths(app), host=HOST, port=443, ssl_keyfile=str(key_path),
            ssl_certfile=str(cert_path), log_level="warning",
        )
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "test endpoint did not start"
        time.sleep(0.05)
    client = AcquirerClient(
        f"https://{HOST}",
        "ACQ_CLIENT",
        rsa_private_key_for_sdk(merchant),
        rsa_public_key_for_sdk(agent.public_key()),
    )
    yield {"client": client, "seen": seen}
    server.should_exit = True
    thread.join(timeout=10)


def test_sdk_client_calls(endpoint: dict[str, Any]) -> None:
    client: AcquirerClient = endpoint["client"]
    population = generate_population(seed=2, customers_per_wallet=2, merchants_per_acquirer=1)
    merchant = population.acquirers[0].merchants[0]
    shop = Shop(merchant, merchant.stores[0], merchant.stores[0].terminals[0])
    payer = population.wallets[0].customers[0]
    assert client.pay_with_code("P1", shop, "SGD", 1234, payer.payment_code)["paymentId"] == "G1"
    assert client.inquiry("P1")["result"]["resultStatus"] == "S"
    assert client.cancel("P1")["result"]["resultStatus"] == "S"
    assert client.refund("R1", "G1", "SGD", 100)["result"]["resultStatus"] == "S"
    assert client.inquiry_refund("R1")["result"]["resultStatus"] == "S"
    pay, inquiry, cancel, refund, inquiry_refund = endpoint["seen"][-5:]
    assert inquiry["body"] == cancel["body"] == {"paymentRequestId": "P1"}
    assert pay["path"] == "/ams/api/v1/payments/pay"
    assert pay["body"]["paymentAmount"] == {"currency": "SGD", "value": "1234"}
    assert pay["body"]["paymentMethod"]["paymentMethodId"] == payer.payment_code
    assert refund["body"]["refundAmount"] == {"currency": "SGD", "value": "100"}
    assert refund["body"]["paymentId"] == "G1" and inquiry_refund["body"]["refundRequestId"] == "R1"


def test_sdk_refuses_a_forged_answer(endpoint: dict[str, Any]) -> None:
    with pytest.raises(AcquirerCallFailed):
        endpoint["client"].inquiry("FORGE")


def test_sdk_client_creates_an_order_code(endpoint: dict[str, Any]) -> None:
    """The SDK's OrderCodePaymentRequest: the OrderCode scenario, no payer, the asked expiry."""
    client: AcquirerClient = endpoint["client"]
    population = generate_population(seed=2, customers_per_wallet=2, merchants_per_acquirer=1)
    merchant = population.acquirers[0].merchants[0]
    shop = Shop(merchant, merchant.stores[0], merchant.stores[0].terminals[0])
    expiry = "2026-11-24T10:05:00+00:00"
    assert client.create_order_code("OC1", shop, "SGD", 990, expiry)["paymentId"] == "G1"
    body = endpoint["seen"][-1]["body"]
    assert body["paymentFactor"] == {"inStorePaymentScenario": "OrderCode"}
    assert body["paymentMethod"] == {"paymentMethodType": "CONNECT_WALLET"}
    assert body["paymentAmount"] == {"currency": "SGD", "value": "990"}
    assert body["paymentExpiryTime"] == expiry and "buyer" not in body["order"]
    assert body["order"]["merchant"]["store"]["referenceStoreId"] == merchant.stores[0].store_id
