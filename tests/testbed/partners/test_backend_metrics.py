"""The reference backends' metrics (`blindgate_testbed.partner_server.observed_backend`): requests by
route and result code and a latency histogram on ``/metrics``, as the gateway's, and no personal
value in any label or log line — though the wallet's answers carry its customer's id and the
caller may put a customer's phone number in the path."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from blindgate_testbed.partner_server import observed_backend
from blindgate_testbed.partners.acquirer import NOTIFY_PATH, NotificationBook, create_acquirer_app
from blindgate_testbed.partners.signed_http import PartnerKeys, signed_request_headers
from blindgate_testbed.partners.wallet import PAY_PATH, WalletBook, create_wallet_app
from blindgate_testbed.population import Population
from tests.testbed.partners.test_wallet import pay_body, rich_customer


def _count(metrics: str, **labels: str) -> float:
    """The sum of ``blindgate_http_requests_total`` over the series carrying ``labels``."""
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("blindgate_http_requests_total{") and all(
            f'{k}="{v}"' in line for k, v in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_the_wallet_backend_counts_by_route_and_result_and_labels_no_personal_value(
    book: WalletBook,
    population: Population,
    backend_and_caller: tuple[PartnerKeys, PartnerKeys],
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend, caller = backend_and_caller
    client = TestClient(observed_backend(create_wallet_app(book, backend), "wallet"))
    customer = rich_customer(population)

    def pay(request_id: str, code: str, path: str = PAY_PATH) -> dict[str, object]:
        body = json.dumps(pay_body(code, 100, request_id))
        answer = client.post(path, content=body, headers=signed_request_headers(path, body, caller))
        return dict(answer.json()) if answer.status_code == 200 else {}

    with caplog.at_level(logging.INFO, logger="blindgate.requests"):
        assert (
            pay("M1", customer.payment_code)["customerId"] == customer.customer_id
        )  # personal, in the answer
        assert pay("M2", customer.payment_code)["result"]["resultCode"] == "SUCCESS"  # type: ignore[index]
        assert pay("M3", "0000", path=f"{PAY_PATH}/{customer.phone}") == {}  # an unknown path, with a phone
        client.get(f"/health?customer={customer.email}")
        metrics = client.get("/metrics").text
    assert _count(metrics, service="wallet-backend", route=PAY_PATH, result_code="SUCCESS", status="200") == 2
    assert _count(metrics, service="wallet-backend", route="other", status="404") == 1
    assert _count(metrics, service="wallet-backend", route="/health") == 1
    buckets = re.findall(rf'blindgate_http_request_seconds_bucket{{[^}}]*route="{PAY_PATH}"', metrics)
    assert len(buckets) > 5  # a latency histogram per route
    logged = "\n".join(
        record.getMessage() + json.dumps(vars(record), default=str) for record in caplog.records
    )
    assert logged.count('"route": "' + PAY_PATH) == 2
    for value in [customer.customer_id, customer.payment_code, *customer.personal_values().values()]:
        assert value not in metrics and value not in logged


def test_the_acquirer_backend_counts_notifications(
    tmp_path: Path, backend_and_caller: tuple[PartnerKeys, PartnerKeys]
) -> None:
    backend, agent = backend_and_caller
    client = TestClient(
        observed_backend(create_acquirer_app(NotificationBook(tmp_path / "a.db"), backend), "acquirer")
    )
    result = {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}
    body = json.dumps(
        {"notifyType": "PAYMENT_RESULT", "paymentRequestId": "N1", "paymentId": "G1", "result": result}
    )
    client.post(NOTIFY_PATH, content=body, headers=signed_request_headers(NOTIFY_PATH, body, agent))
    forged = signed_request_headers(NOTIFY_PATH, body, backend)  # signed with the wrong key
    client.post(NOTIFY_PATH, content=body, headers=forged)
    metrics = client.get("/metrics").text
    assert _count(metrics, service="acquirer-backend", route=NOTIFY_PATH, result_code="SUCCESS") == 1
    assert (
        _count(metrics, service="acquirer-backend", route=NOTIFY_PATH, result_code="INVALID_SIGNATURE") == 1
    )
