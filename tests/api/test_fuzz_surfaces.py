"""Property-based fuzz of the three HTTP surfaces: the gateway, the acquirer's agent, the wallet's agent.

Every operation each surface's OpenAPI document lists (`blindgate.api.openapi.SURFACE_PATHS`) is
called, correctly signed by the party that may call it, with a body hypothesis derives from a
valid one: the body as is, with leaves and fields replaced by arbitrary JSON, unknown fields
added, or broken outright (a required field of the document dropped or of the wrong type, not an
object, not JSON, a number past 64 bits, a lone surrogate, nested past the bound). Whatever comes:

- never a 5xx and never a stack trace in the answer;
- a malformed body (broken as above) is never answered U: it is refused, F;
- a malformed body stores nothing: no payment, refund, order code or ledger line at the gateway,
  no entry in either agent's journal, no debit at the wallet;
- a request answered F (or a 4xx) debits no one. (A well-formed payment that the wallet declines,
  say for a field it cannot open, is kept at the gateway as failed: its record, not stored input.)

The budget is fixed and the run deterministic (``derandomize``): the same examples every run.
Strategies are written here rather than by hypothesis-jsonschema (its 0.23 fails with this
hypothesis's internals) or schemathesis (which cannot sign the AMS envelope): they are small,
since the documents' request schemas are flat objects of strings and amounts.
"""

from __future__ import annotations

import copy
import functools
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blindgate.agent.policy import FieldPolicy, seal_message
from blindgate.api import models as m
from blindgate.api.contexts import SEALED_AT_FIELD, seal_context
from blindgate.api.openapi import SURFACE_PATHS, openapi_document
from blindgate.api.signed import request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.app import engine_of
from tests.gateway.harness import (
    PAYER,
    POOR,
    SDK_CLIENT,
    LocalNetwork,
    build,
    order_code_body,
    pay_body,
    run,
)

EXAMPLES = 60  # per surface: a few seconds each
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HOSTS = {
    "gateway": "http://gateway.test",
    "acquirer-agent": "https://a1-agent.test",
    "wallet-agent": "http://w1-agent.test",
}
GATEWAY_TABLES = ("gw_payments", "gw_refunds", "gw_order_codes", "ledger_entries", "ledger_lines")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("fuzz-surfaces"))


# --- valid bodies, one per operation and surface ---------------------------------------------------


def _sealed_pay(net: LocalNetwork, request_id: str) -> dict[str, Any]:
    """A pay as the acquirer's agent sends it to the gateway: payer fields sealed to the wallet."""
    wallet = net.network.partner("WALLET_KR")
    assert wallet is not None
    body, now = pay_body(request_id, code=POOR.payment_code), int(time.time())
    body["paymentMethod"]["customerBelongsTo"] = "WALLET_KR"
    sealed, _ = seal_message(
        body, FieldPolicy.load(), wallet.keys.recipient_key, seal_context("ACQ_SG", request_id, now)
    )
    return sealed | {SEALED_AT_FIELD: now}


def valid_bodies(net: LocalNetwork, surface: str, path: str, serial: int) -> list[dict[str, Any]]:
    rid = f"fz-{surface}-{serial}"
    refs = [{"paymentRequestId": rid}, {"paymentId": rid}]
    common: dict[str, list[dict[str, Any]]] = {
        m.INQUIRY_PATH: refs,
        m.CANCEL_PATH: refs,
        m.REFUND_PATH: [{"refundRequestId": rid, "paymentId": rid,
                         "refundAmount": {"currency": "SGD", "value": "5"}}],
        m.INQUIRY_REFUND_PATH: [{"refundRequestId": rid}],
        m.ORDER_CODE_SCAN_PATH: [{"codeValue": "https://qr.blindgate.invalid/" + rid,
                                  "customerPseudonym": "p" * 43}],
        m.ORDER_CODE_RESULT_PATH: [{"paymentRequestId": rid,
                                    "result": {"resultCode": "SUCCESS", "resultStatus": "S"}}],
        m.NOTIFY_AGENT_PATH: [{"notifyType": "PAYMENT_RESULT", "paymentRequestId": rid, "paymentId": rid,
                               "result": {"resultCode": "SUCCESS", "resultStatus": "S"}}],
    }  # fmt: skip
    if path == m.PAY_PATH:
        user_presented = (
            _sealed_pay(net, rid) if surface == "gateway" else pay_body(rid, code=POOR.payment_code)
        )
        return [user_presented, order_code_body(rid + "-oc")]
    if path in m.WALLET_PATHS:
        return [{"paymentRequestId": rid, "paymentId": rid,
                 "paymentAmount": {"currency": "KRW", "value": "100"},
                 "refundRequestId": rid, "refundAmount": {"currency": "KRW", "value": "1"}}]  # fmt: skip
    return common[path]


# --- what hypothesis does to them -------------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Raw JSON text the parsers must refuse (documented in blindgate.api.models.parse_json_object).
HOSTILE_TEXT = [
    b"9" * 5000,
    b"1" + b"0" * 30,
    b'"\\ud800"',
    b"NaN",
    b"[" * 20 + b"]" * 20,
    b'{"a":' * 12 + b"1" + b"}" * 12,
]


def _leaves(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, (*at, k))] or [at]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, (*at, i))] or [at]
    return [at]


def _set(body: dict[str, Any], where: tuple[Any, ...], value: Any) -> None:
    node: Any = body
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = value


@functools.cache
def _required(surface: str, path: str) -> tuple[tuple[str, ...], ...]:
    """The (nested) required fields the surface's document states for ``path``."""
    document = openapi_document(surface)
    schemas = document["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        return schemas[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema

    def walk(schema: dict[str, Any], prefix: tuple[str, ...]) -> list[tuple[str, ...]]:
        schema = resolve(schema)
        found = [(*prefix, name) for name in schema.get("required", [])]
        for name, spec in schema.get("properties", {}).items():
            if resolve(spec).get("type") == "object":
                found += walk(spec, (*prefix, name))
        return found

    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return tuple(walk(body, ()))


@st.composite
def requests(draw: st.DrawFn, net: LocalNetwork, surface: str) -> tuple[str, bytes, bool]:
    """(path, raw body, malformed?): a body derived from a valid one, and whether it is broken."""
    path = draw(st.sampled_from(SURFACE_PATHS[surface]))
    body = copy.deepcopy(draw(st.sampled_from(valid_bodies(net, surface, path, draw(st.integers(0, 10**6))))))
    how = draw(
        st.sampled_from(["as is", "leaf", "extra", "drop", "mistype", "not object", "not json", "hostile"])
    )
    if how == "leaf":
        _set(body, draw(st.sampled_from(_leaves(body))), draw(JSON))
    elif how == "extra":
        body[draw(st.text(min_size=1, max_size=12))] = draw(JSON)
    elif how in ("drop", "mistype"):
        present = [w for w in _required(surface, path) if _has(body, w)]
        if not present:
            return path, json.dumps(body).encode(), False
        where = draw(st.sampled_from(present))
        if how == "drop":
            _parent(body, where).pop(where[-1])
        else:
            wrong = 12 if isinstance(_get(body, where), str | dict) else "12"
            _set(body, where, draw(st.sampled_from([wrong, [wrong], None, True])))
        return path, json.dumps(body).encode(), True
    elif how == "not object":
        return path, json.dumps(draw(JSON.filter(lambda v: not isinstance(v, dict)))).encode(), True
    elif how == "not json":
        raw = draw(st.binary(min_size=1, max_size=80).filter(_not_json_object))
        return path, raw, True
    elif how == "hostile":
        where = draw(st.sampled_from(_leaves(body)))
        _set(body, where, "HOSTILE")
        return (
            path,
            json.dumps(body).encode().replace(b'"HOSTILE"', draw(st.sampled_from(HOSTILE_TEXT)), 1),
            True,
        )
    return path, json.dumps(body).encode(), False


def _not_json_object(raw: bytes) -> bool:
    try:
        return not isinstance(json.loads(raw), dict)
    except ValueError:
        return True


def _get(body: Any, where: tuple[str, ...]) -> Any:
    for step in where:
        body = body[step]
    return body


def _has(body: Any, where: tuple[str, ...]) -> bool:
    for step in where:
        if not isinstance(body, dict) or step not in body:
            return False
        body = body[step]
    return True


def _parent(body: Any, where: tuple[str, ...]) -> dict[str, Any]:
    parent: dict[str, Any] = _get(body, where[:-1])
    return parent


# --- calling, as the party each surface takes the operation from -------------------------------------


@functools.cache
def _ed25519(keys_dir: Path) -> tuple[Any, int]:
    return KeyStore(keys_dir).signing_key(ED25519)


def _signed(net: LocalNetwork, surface: str, path: str, raw: bytes) -> dict[str, str]:
    if surface == "acquirer-agent" and path != m.NOTIFY_AGENT_PATH:
        return request_headers(path, raw, SDK_CLIENT, net.merchant_key, 1)  # the merchant's SDK
    if surface == "wallet-agent" and path == m.ORDER_CODE_SCAN_PATH:
        assert net.wallet_backend_key is not None
        return request_headers(path, raw, "W1_BACKEND", net.wallet_backend_key, 1)  # the wallet backend
    if surface == "gateway":
        wallet_side = path in (m.ORDER_CODE_SCAN_PATH, m.ORDER_CODE_RESULT_PATH)
        keys, client = (
            ("wallet-agent-keys", "WALLET_KR_AGENT")
            if wallet_side
            else ("acquirer-agent-keys", "ACQ_SG_AGENT")
        )
        return request_headers(path, raw, client, *_ed25519(net.root / keys))
    return request_headers(path, raw, "GATEWAY", *_ed25519(net.root / "gateway-keys"))  # the gateway calls


def _state(net: LocalNetwork) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    with engine_of(net.gateway_app).connect() as conn:
        gateway = tuple(
            conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in GATEWAY_TABLES
        )
    journals = tuple(_rows(net.root / f"{side}-agent-journal.db") for side in ("acquirer", "wallet"))
    balances = tuple(net.wallet_book.balance(c.customer_id) for c in (PAYER, POOR))
    return gateway, journals, balances


def _rows(database: Path) -> int:
    with sqlite3.connect(database) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)


async def _post(net: LocalNetwork, surface: str, path: str, raw: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=net.router) as client:
        return await client.post(HOSTS[surface] + path, content=raw, headers=_signed(net, surface, path, raw))


@pytest.mark.parametrize("surface", sorted(HOSTS))
def test_no_input_breaks_a_surface(net: LocalNetwork, surface: str) -> None:
    seen: dict[str, int] = {}

    @FUZZ
    @given(st.data())
    def fuzz(data: st.DataObject) -> None:
        path, raw, malformed = data.draw(requests(net, surface))
        before = _state(net)
        response = run(_post(net, surface, path, raw))
        assert response.status_code < 500, (path, response.status_code, response.text[:300])
        assert "Traceback" not in response.text and 'File "' not in response.text
        answer = (
            response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        )
        outcome = answer.get("result", {}) if isinstance(answer, dict) else {}
        status = outcome.get("resultStatus")
        if malformed:
            assert status != "U", (path, raw[:200], answer)
        if malformed:
            assert _state(net) == before, (path, raw[:200], answer)
        if status == "F" or response.status_code >= 400:
            assert _state(net)[2] == before[2], (path, raw[:200], answer)  # nobody debited
        seen[str(status)] = seen.get(str(status), 0) + 1

    fuzz()
    assert seen.get("F", 0) > 0, seen  # the fuzz reached the parsers, not just the signature check


# Each of these in any one field makes a body malformed (`blindgate.api.models.parse_json_object`).
HOSTILE_IN_A_FIELD = {
    "lone-surrogate": b'"\\udc00"',
    "beyond-int64": b"1" + b"0" * 30,
    "too-deep": b"[" * 12 + b"]" * 12,
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE_IN_A_FIELD))
@pytest.mark.parametrize("surface", sorted(HOSTS))
def test_a_hostile_value_in_any_field_is_refused(net: LocalNetwork, surface: str, hostile: str) -> None:
    """Not sampled but every field of every operation's valid bodies, in turn: the value that the
    random draw above may miss (the lone surrogate once ended U with a payment left PROCESSING)."""
    for path in SURFACE_PATHS[surface]:
        for body in valid_bodies(net, surface, path, 2_000_000 + sorted(HOSTILE_IN_A_FIELD).index(hostile)):
            for where in _leaves(body):
                broken = copy.deepcopy(body)
                _set(broken, where, "HOSTILE")
                raw = json.dumps(broken).encode().replace(b'"HOSTILE"', HOSTILE_IN_A_FIELD[hostile], 1)
                before = _state(net)
                response = run(_post(net, surface, path, raw))
                assert response.status_code < 500 and "Traceback" not in response.text, (path, where)
                outcome = response.json().get("result", {})
                assert outcome.get("resultStatus") != "U", (path, where, outcome)
                assert _state(net) == before, (path, where, outcome)
