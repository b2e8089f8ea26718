"""What `blindgate gateway` and `blindgate agent` expose to an operator: Prometheus metrics and one
JSON log line per request outcome (refunds, cancels and refusals included), with no personal value
anywhere in them; and the OpenAPI documents, checked in, served, and agreeing with the parsers."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from blindgate.api import models
from blindgate.api.observe import observed
from blindgate.api.openapi import SURFACES, openapi_document
from blindgate.api.results import ApiError
from blindgate.gateway.observe import observed_gateway
from blindgate.logs import JsonFormatter
from tests.gateway.harness import PAYER, LocalNetwork, build, pay_body, run

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi"


def _observed_network(tmp_path: Path) -> LocalNetwork:
    """The in-process network with the gateway and the acquirer's agent wrapped as the commands do."""
    net = build(tmp_path / "net")
    net.router.add("gateway.test", observed_gateway(net.gateway_app))
    agent = net.router.apps["a1-agent.test"].app
    net.router.add(
        "a1-agent.test",
        observed(agent, "acquirer-agent", models.ACQUIRER_PATHS, openapi_document("acquirer-agent")),
    )
    return net


async def _get(net: LocalNetwork, url: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=net.router) as client:
        return await client.get(url)


def _traffic(net: LocalNetwork) -> None:
    """A payment, a refund, a cancel, and refusals: bad input and a forged signature."""
    paid = run(net.sdk(models.PAY_PATH, pay_body("obs-1")))
    assert paid["result"]["resultCode"] == "SUCCESS"
    refund = {
        "refundRequestId": "obs-r1",
        "paymentId": paid["paymentId"],
        "refundAmount": {"currency": "SGD", "value": "100"},
    }
    assert run(net.sdk(models.REFUND_PATH, refund))["result"]["resultCode"] == "SUCCESS"
    assert (
        run(net.sdk(models.CANCEL_PATH, {"paymentRequestId": "obs-1"}))["result"]["resultCode"] == "SUCCESS"
    )
    bad = run(net.sdk(models.PAY_PATH, pay_body("obs-2", paymentAmount={"currency": "SGD", "value": "-5"})))
    assert bad["result"]["resultStatus"] == "F"
    forged = run(
        net.sdk(
            models.INQUIRY_PATH,
            {"paymentRequestId": "obs-1"},
            headers={"signature": "algorithm=RSA256,keyVersion=1,signature=AAAA"},
        )
    )
    assert forged["result"]["resultCode"] == "INVALID_SIGNATURE"


def test_every_outcome_is_counted_and_logged_without_personal_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    net = _observed_network(tmp_path)
    with caplog.at_level(logging.INFO, logger="blindgate.requests"):
        _traffic(net)
        gateway_metrics = run(_get(net, "http://gateway.test/metrics")).text
        agent_metrics = run(_get(net, "https://a1-agent.test/metrics")).text
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "blindgate.requests"]
    entries = [json.loads(line) for line in lines]
    agent_codes = [(e["route"], e["result_code"]) for e in entries if e["service"] == "acquirer-agent"]
    for expected in [
        (models.PAY_PATH, "SUCCESS"),
        (models.REFUND_PATH, "SUCCESS"),
        (models.CANCEL_PATH, "SUCCESS"),
        (models.PAY_PATH, "PARAM_ILLEGAL"),
        (models.INQUIRY_PATH, "INVALID_SIGNATURE"),
    ]:
        assert expected in agent_codes, expected
    gateway_routes = {e["route"] for e in entries if e["service"] == "gateway"}
    assert {models.PAY_PATH, models.REFUND_PATH, models.CANCEL_PATH} <= gateway_routes
    for entry in entries:
        assert re.fullmatch(r"[0-9a-f]{32}", entry["request_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])  # zone-aware, ms
        assert entry["duration_ms"] >= 0
    assert len({e["request_id"] for e in entries}) == len(entries)
    # The agent's requests carried the payer's code and buyer details: none of it is anywhere.
    everything = "\n".join(lines) + gateway_metrics + agent_metrics
    for value in PAYER.personal_values().values():
        assert value not in everything
    assert 'route="/ams/api/v1/payments/refund"' in agent_metrics
    assert re.search(r'blindgate_http_requests_total\{[^}]*result_code="INVALID_SIGNATURE"', agent_metrics)
    assert "blindgate_http_request_seconds_bucket" in agent_metrics
    assert "blindgate_http_requests_in_progress" in agent_metrics
    # The gateway's: its own per-operation series, then these, then the store's gauges.
    assert "blindgate_gateway_requests_total" in gateway_metrics
    assert re.search(r'blindgate_ledger_postings\{event_type="REFUND"\} 1', gateway_metrics)
    assert re.search(r"^blindgate_outbox_depth \d", gateway_metrics, re.M)


def test_a_path_nobody_routes_is_labelled_other_never_echoed(tmp_path: Path) -> None:
    net = _observed_network(tmp_path)
    assert run(_get(net, f"https://a1-agent.test/{PAYER.phone}")).status_code == 404
    assert (
        run(_get(net, "https://a1-agent.test/metrics"))
        .headers.get("content-type", "")
        .startswith("text/plain")
    )
    metrics = run(_get(net, "https://a1-agent.test/metrics")).text
    assert PAYER.phone not in metrics and 'route="other"' in metrics


@pytest.mark.parametrize("surface", SURFACES)
def test_the_checked_in_openapi_documents_are_the_generated_ones(surface: str) -> None:
    checked_in = json.loads((DOCS / f"{surface}.json").read_text())
    assert checked_in == openapi_document(surface), "run: python -m blindgate.api.openapi docs/openapi"
    assert checked_in["openapi"] == "3.1.0"


def test_the_served_document_is_the_surfaces(tmp_path: Path) -> None:
    net = _observed_network(tmp_path)
    assert run(_get(net, "http://gateway.test/openapi.json")).json() == openapi_document("gateway")
    assert run(_get(net, "https://a1-agent.test/openapi.json")).json() == openapi_document("acquirer-agent")


def _example(schema: dict[str, Any]) -> Any:
    """The longest value a schema allows (ids at maxLength): what the parser must accept."""
    if "$ref" in schema:
        return _example(
            openapi_document("gateway")["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        )
    if schema.get("type") == "object":
        return {name: _example(schema["properties"][name]) for name in schema.get("required", [])}
    if "enum" in schema:
        return "SGD" if "SGD" in schema["enum"] else schema["enum"][0]
    if schema.get("pattern", "").startswith("^[0-9]"):
        return "9" * int(schema["pattern"].split(",")[1].split("}")[0])
    return "x" * schema["maxLength"]


@pytest.mark.parametrize(
    ("name", "parse"),
    [
        ("RefundRequest", models.RefundRequest.parse),
        ("RefundRef", models.RefundRef.parse),
        ("ScanRequest", models.ScanRequest.parse),
    ],
)
def test_the_schemas_bounds_are_the_parsers(name: str, parse: Any) -> None:
    """At each string's maxLength the parser accepts; one more character and it refuses."""
    schemas = openapi_document("gateway")["components"]["schemas"]
    body = _example(schemas[name])
    parse(body)
    for field, spec in schemas[name]["properties"].items():
        if spec.get("maxLength") and field in body:
            with pytest.raises(ApiError):
                parse({**body, field: body[field] + "x"})
