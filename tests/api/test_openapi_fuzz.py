"""Fuzzing the gateway from its OpenAPI document: for each acquirer-facing operation, bodies that
break one rule the document states (a required field missing, a string over its maxLength or
outside its pattern, a wrong type, a currency outside the enum) are refused with status F and
an AMS code, HTTP 200, nothing stored; bodies inside the document never end in
UNKNOWN_EXCEPTION. The rules come from the served document, not from this test."""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blindgate.api.models import CANCEL_PATH, INQUIRY_PATH, INQUIRY_REFUND_PATH, REFUND_PATH
from blindgate.api.openapi import openapi_document
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.app import engine_of
from tests.gateway.harness import LocalNetwork, build, run

DOCUMENT = openapi_document("gateway")
SCHEMAS = DOCUMENT["components"]["schemas"]
REFUSALS = {"PARAM_ILLEGAL", "CURRENCY_NOT_SUPPORT"}
VALID = {  # one body inside each operation's schema
    REFUND_PATH: {
        "refundRequestId": "fz-r",
        "paymentId": "fz-p",
        "refundAmount": {"currency": "SGD", "value": "5"},
    },
    INQUIRY_REFUND_PATH: {"refundRequestId": "fz-r"},
    INQUIRY_PATH: {"paymentRequestId": "fz-p"},
    CANCEL_PATH: {"paymentRequestId": "fz-p"},
}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("fuzz"))


def _schema(path: str) -> dict[str, Any]:
    ref = DOCUMENT["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return _resolve(SCHEMAS[ref.rsplit("/", 1)[1]])


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    return SCHEMAS[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema


def _rules(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str, Any]]:
    """Every (field path, rule, spec) the schema states, nested objects included."""
    found: list[tuple[tuple[str, ...], str, Any]] = []
    for name in schema.get("required", []):
        found.append(((*prefix, name), "required", None))
    for name, spec in schema.get("properties", {}).items():
        spec = _resolve(spec)
        where = (*prefix, name)
        if spec.get("type") == "object":
            found.append((where, "type", "object"))
            found += _rules(spec, where)
        elif spec.get("type") == "string":
            found.append((where, "type", "string"))
            for rule in ("maxLength", "pattern", "enum"):
                if rule in spec:
                    found.append((where, rule, spec[rule]))
    return found


def _broken(
    body: dict[str, Any], where: tuple[str, ...], rule: str, spec: Any, data: st.DataObject
) -> dict[str, Any]:
    broken = copy.deepcopy(body)
    parent = broken
    for name in where[:-1]:
        parent = parent[name]
    field = where[-1]
    if rule == "required":
        parent.pop(field, None)
    elif rule == "type":
        parent[field] = data.draw(
            st.sampled_from([12, 1.5, True, ["x"]] + ([{}] if spec == "string" else ["x"]))
        )
    elif rule == "maxLength":
        parent[field] = "x" * (spec + data.draw(st.integers(1, 40)))
    elif rule == "pattern":
        candidates = st.sampled_from(["", "\u00e9\u00e9", "-5", "1.5", "\x07bell", "12a"])
        parent[field] = data.draw(candidates.filter(lambda value: re.search(spec, value) is None))
    elif rule == "enum":
        parent[field] = data.draw(
            st.sampled_from(["XXX", "sgd", "SG", "USDT"]).filter(lambda v: v not in spec)
        )
    return broken


@functools.cache
def _signer(keys_dir: Path) -> tuple[Any, int]:
    """The acquirer agent's Ed25519 key, loaded once (loading a key store costs ~0.3 s)."""
    return KeyStore(keys_dir).signing_key(ED25519)


async def _call(net: LocalNetwork, path: str, body: dict[str, Any]) -> httpx.Response:
    key, version = _signer(net.root / "acquirer-agent-keys")
    payload = encode(body)
    headers = request_headers(path, payload, "ACQ_SG_AGENT", key, version)
    async with httpx.AsyncClient(transport=net.router) as client:
        return await client.post("http://gateway.test" + path, content=payload, headers=headers)


def _stored(net: LocalNetwork) -> int:
    with engine_of(net.gateway_app).connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT (SELECT count(*) FROM gw_payments) + (SELECT count(*) FROM gw_refunds)")
            ).scalar_one()
        )


@pytest.mark.parametrize("path", list(VALID))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_body_breaking_a_documented_rule_is_refused(
    net: LocalNetwork, path: str, data: st.DataObject
) -> None:
    rules = [r for r in _rules(_schema(path)) if _reachable(VALID[path], r[0])]
    where, rule, spec = data.draw(st.sampled_from(rules))
    if rule == "required" and path in {INQUIRY_PATH, CANCEL_PATH}:
        return  # PaymentRef: either id will do (anyOf), so dropping one breaks nothing
    before = _stored(net)
    response = run(_call(net, path, _broken(VALID[path], where, rule, spec, data)))
    assert response.status_code == 200
    outcome = response.json()["result"]
    assert outcome["resultStatus"] == "F" and outcome["resultCode"] in REFUSALS, (where, rule, outcome)
    assert _stored(net) == before and "Traceback" not in response.text


@pytest.mark.parametrize("path", list(VALID))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_body_inside_the_document_never_ends_unknown(
    net: LocalNetwork, path: str, data: st.DataObject
) -> None:
    body = copy.deepcopy(VALID[path])
    for name, spec in _schema(path).get("properties", {}).items():
        spec = _resolve(spec)
        if name in body and spec.get("type") == "string" and "maxLength" in spec:
            alphabet = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
            body[name] = data.draw(st.text(alphabet, min_size=1, max_size=spec["maxLength"]))
    answer = json.loads(run(_call(net, path, body)).text)
    assert answer["result"]["resultCode"] != "UNKNOWN_EXCEPTION"


def _reachable(body: dict[str, Any], where: tuple[str, ...]) -> bool:
    node: Any = body
    for name in where[:-1]:
        if not isinstance(node, dict) or name not in node:
            return False
        node = node[name]
    return isinstance(node, dict)


def test_the_document_states_rules_for_every_fuzzed_operation() -> None:
    for path in VALID:
        assert any(rule == "maxLength" for _, rule, _ in _rules(_schema(path))), path
