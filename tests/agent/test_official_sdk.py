"""The official SDK (global-alipay-sdk-python, unchanged) drives pay, inquiry, refund and cancel
through the acquirer's agent served by uvicorn with TLS on 127.0.0.77:443 (absolute-form targets)."""

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import rsa_private_key_for_sdk, rsa_public_key_for_sdk
from blindgate_testbed.network import write_tls_certificate
from blindgate_testbed.partners.acquirer import AcquirerClient, Shop
from blindgate_testbed.population import Merchant, Store
from tests.gateway.harness import PAYER, SDK_CLIENT, LocalNetwork, build
from tests.tls_server import serving_tls

HOST = "127.0.0.77"


_STORE = Store("S1", "Kopi Tiam Bugis", "5812", ("T1",))
SHOP = Shop(Merchant("M1", "Kopi Tiam", "5812", "SG", (_STORE,)), _STORE, "T1")


def sdk_client(net: LocalNetwork, tmp_path: Path, **options: Any) -> AcquirerClient:
    """The official SDK's client, as the merchant, trusting the acquirer agent's RSA key."""
    agent_rsa = KeyStore(tmp_path / "net" / "acquirer-agent-keys").rsa_key().public_key()
    return AcquirerClient(
        f"https://{HOST}",
        SDK_CLIENT,
        rsa_private_key_for_sdk(net.merchant_key),
        rsa_public_key_for_sdk(agent_rsa),
        **options,
    )


@contextlib.contextmanager
def serving_agent(net: LocalNetwork, tmp_path: Path) -> Iterator[None]:
    """The acquirer's agent on HOST:443 with TLS, where the SDK connects."""
    key_path, cert_path = write_tls_certificate(HOST, tmp_path / "tls")
    with serving_tls(net.router.apps["a1-agent.test"].app, HOST, 443, cert_path, key_path, may_skip=True):
        yield


def test_sdk_pays_inquires_refunds_and_cancels(tmp_path: Path) -> None:
    net = build(tmp_path / "net")
    client = sdk_client(net, tmp_path)
    with serving_agent(net, tmp_path):
        paid = client.pay_with_code("sdk-1", SHOP, "SGD", 1250, PAYER.payment_code, PAYER)
        assert paid["result"]["resultStatus"] == "S", paid
        assert paid["customerId"] == PAYER.customer_id
        assert client.inquiry("sdk-1")["paymentStatus"] == "SUCCESS"
        refund = client.refund("sdk-r1", paid["paymentId"], "SGD", 250)
        assert refund["result"]["resultCode"] == "SUCCESS", refund
        assert client.inquiry_refund("sdk-r1")["refundStatus"] == "SUCCESS"
        assert client.cancel("sdk-1")["result"]["resultCode"] == "SUCCESS"
        assert client.inquiry("sdk-1")["paymentStatus"] == "CANCELLED"


def test_sdk_order_code_is_paid_by_a_scan_and_learned_by_notification_and_inquiry(tmp_path: Path) -> None:
    """OrderCodePaymentRequest (the SDK's own) -> U + orderCodeForm; the payer scans it in the wallet app."""
    from com.alipay.ams.api.response.pay.alipay_pay_response import AlipayPayResponse

    from blindgate.gateway.notifier import Notifier
    from blindgate_testbed.partners.acquirer import NOTIFY_PATH, order_code_value
    from tests.gateway.harness import run

    net = build(tmp_path / "net")
    client = sdk_client(net, tmp_path, notify_url="http://a1-backend.test" + NOTIFY_PATH)
    at = "2026-11-24T10:00:00+00:00"
    with serving_agent(net, tmp_path):
        issued = client.create_order_code("sdk-oc-1", SHOP, "SGD", 1250, terminal_time=at)
        assert issued["result"]["resultCode"] == "PAYMENT_IN_PROCESS", issued
        code = order_code_value(issued)
        assert code is not None
        parsed = AlipayPayResponse(json.dumps(issued))  # the SDK's own reading of the answer
        assert parsed.order_code_form.code_details[0].code_value == code
        assert client.inquiry("sdk-oc-1")["paymentStatus"] == "PROCESSING"

        scanned = run(net.app_scan(PAYER.payment_code, code))
        assert scanned["result"]["resultStatus"] == "S", scanned
        notifier: Notifier = net.gateway_app.state.notifier
        assert run(notifier.deliver_due()) == 1
        assert net.notifications.outcomes() == {"S": 1}  # the notification reached paymentNotifyUrl

        inquiry = client.inquiry("sdk-oc-1")
        assert inquiry["paymentStatus"] == "SUCCESS" and inquiry["customerId"] == PAYER.customer_id
        assert inquiry["paymentId"] == issued["paymentId"]
        assert client.journal.records() == [(issued["paymentId"], "PAYMENT", "SGD", 1250, "SUCCESS")]
        replay = client.create_order_code("sdk-oc-1", SHOP, "SGD", 1250, terminal_time=at)
        assert replay["result"]["resultCode"] == "SUCCESS" and replay["paymentId"] == issued["paymentId"]
