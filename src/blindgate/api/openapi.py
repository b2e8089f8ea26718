"""OpenAPI 3.1 documents of the gateway's and the agents' HTTP surfaces, built from the contract.

Every path comes from `blindgate.api.models`' constants and every bound from the limits the
parsers enforce there (`MAX_ID_CHARS`, `MAX_URL_CHARS`, `MAX_CODE_VALUE_CHARS`,
`MAX_BODY_BYTES`, the amount rules and currency table of `blindgate.api.amounts`), and every
result code from `blindgate.api.results.RESULTS`: change a limit and the document changes
with it (``docs/openapi/*.json`` are checked against :func:`openapi_document` by a test,
and the served ``GET /openapi.json`` is the same document).

The request schemas describe the fields the gateway's parsers check (`PayRequest`,
`OrderCodeRequest`, `PaymentRef`, `RefundRequest`, `RefundRef`, `ScanRequest`); other
fields pass through (``additionalProperties``), sealed or clear as the field policy says.
Every answer is HTTP 200 with a signed body whose ``result`` says the outcome (AMS style);
``Signature`` is ``algorithm=RSA256|ED25519,keyVersion=N,signature=...``
(`blindgate.api.signed`). Regenerate with ``python -m blindgate.api.openapi docs/openapi``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from blindgate import __version__
from blindgate.api import models as m
from blindgate.api.amounts import EXPONENTS, MAX_VALUE_DIGITS
from blindgate.api.results import RESULTS

SURFACES = ("gateway", "acquirer-agent", "wallet-agent")
PRINTABLE_ASCII = "^[\\x20-\\x7E]+$"
SIGNATURE_PATTERN = "^algorithm=(RSA256|ED25519),keyVersion=[0-9]+,signature=.+$"


def _text(max_chars: int = m.MAX_ID_CHARS) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": PRINTABLE_ASCII}


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": True,
    }


AMOUNT = {
    "type": "object",
    "required": ["currency", "value"],
    "properties": {
        "currency": {"type": "string", "enum": sorted(EXPONENTS)},
        "value": {
            "type": "string",
            "pattern": f"^[0-9]{{1,{MAX_VALUE_DIGITS}}}$",
            "description": "minor units, > 0",
        },
    },
}
MOMENT = {"type": "string", "format": "date-time", "maxLength": 40, "description": "ISO 8601 with a zone"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Amount": AMOUNT,
    "Result": {
        "type": "object",
        "required": ["resultCode", "resultStatus"],
        "properties": {
            "resultCode": {"type": "string", "enum": sorted(RESULTS)},
            "resultStatus": {"type": "string", "enum": ["S", "F", "U"]},
            "resultMessage": {"type": "string"},
        },
    },
    "Answer": _object({"result": {"$ref": "#/components/schemas/Result"}}),
    "PayRequest": _object(
        {
            "paymentRequestId": _text(),
            "paymentAmount": {"$ref": "#/components/schemas/Amount"},
            "productCode": _text(),
            "paymentMethod": _object({"paymentMethodType": _text()}, {m.ROUTING_FIELD: _text()}),
        },
        {
            "paymentNotifyUrl": _text(m.MAX_URL_CHARS),
            "paymentExpiryTime": MOMENT,
            "order": {"type": "object"},
            "paymentFactor": _object({}, {"inStorePaymentScenario": {"type": "string"}}),
        },
    ),
    "PaymentRef": {
        **_object({}, {"paymentRequestId": _text(), "paymentId": _text()}),
        "anyOf": [{"required": ["paymentRequestId"]}, {"required": ["paymentId"]}],
    },
    "RefundRequest": _object(
        {
            "refundRequestId": _text(),
            "paymentId": _text(),
            "refundAmount": {"$ref": "#/components/schemas/Amount"},
        }
    ),
    "RefundRef": _object({"refundRequestId": _text()}),
    "ScanRequest": _object({"codeValue": _text(m.MAX_CODE_VALUE_CHARS), "customerPseudonym": _text(80)}),
    "WalletRequest": {"type": "object", "description": "the Alipay+ wallet-side body, fields sealed"},
    "Notification": {"type": "object", "description": "a payment's outcome, its customerId sealed"},
}

# path -> (summary, request schema)
OPERATIONS: dict[str, tuple[str, str]] = {
    m.PAY_PATH: (
        "pay by a payer's code, or issue an order code (scenario OrderCode)",
        "PayRequest",
    ),
    m.INQUIRY_PATH: ("a payment's status", "PaymentRef"),
    m.CANCEL_PATH: ("cancel a payment", "PaymentRef"),
    m.REFUND_PATH: ("refund part or all of a payment", "RefundRequest"),
    m.INQUIRY_REFUND_PATH: ("a refund's status", "RefundRef"),
    m.ORDER_CODE_SCAN_PATH: (
        "a payer's wallet claims a scanned order code",
        "ScanRequest",
    ),
    m.ORDER_CODE_RESULT_PATH: ("the wallet's answer to an order-code payment", "WalletRequest"),
    m.NOTIFY_AGENT_PATH: ("a payment's outcome, from the gateway", "Notification"),
    **{path: ("the wallet-side Alipay+ API, relayed", "WalletRequest") for path in m.WALLET_PATHS},
}

SURFACE_PATHS: dict[str, tuple[str, ...]] = {
    "gateway": (*m.ACQUIRER_PATHS, m.ORDER_CODE_SCAN_PATH, m.ORDER_CODE_RESULT_PATH),
    "acquirer-agent": (*m.ACQUIRER_PATHS, m.NOTIFY_AGENT_PATH),
    "wallet-agent": (*m.WALLET_PATHS, m.ORDER_CODE_SCAN_PATH),
}

_SIGNED_HEADERS = [
    {"name": "Client-Id", "in": "header", "required": True, "schema": _text()},
    {
        "name": "Request-Time",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "format": "date-time"},
    },
    {
        "name": "Signature",
        "in": "header",
        "required": True,
        "schema": {
            "type": "string",
            "pattern": SIGNATURE_PATTERN,
        },
    },
]


def _operation(path: str) -> dict[str, Any]:
    summary, schema = OPERATIONS[path]
    return {
        "post": {
            "summary": summary,
            "operationId": path.rsplit("/", 1)[-1],
            "parameters": _SIGNED_HEADERS,
            "requestBody": {
                "required": True,
                "description": f"JSON object, at most {m.MAX_BODY_BYTES} bytes, {m.MAX_DEPTH} levels deep",
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
            },
            "responses": {
                "200": {
                    "description": "every outcome, errors included: a signed answer; see result",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Answer"}}},
                }
            },
        }
    }


def _get(summary: str, media: str) -> dict[str, Any]:
    return {
        "get": {"summary": summary, "responses": {"200": {"description": summary, "content": {media: {}}}}}
    }


def openapi_document(surface: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one surface: ``gateway``, ``acquirer-agent`` or ``wallet-agent``."""
    if surface not in SURFACES:
        raise ValueError(f"surface is one of {', '.join(SURFACES)}")
    paths = {path: _operation(path) for path in SURFACE_PATHS[surface]}
    paths["/health"] = _get("ready: answers ok", "text/plain")
    paths["/metrics"] = _get("Prometheus metrics (no personal value in any label)", "text/plain")
    paths["/openapi.json"] = _get("this document", "application/json")
    used = {OPERATIONS[path][1] for path in SURFACE_PATHS[surface]} | {"Answer", "Result", "Amount"}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"blindgate {surface}", "version": __version__},
        "paths": paths,
        "components": {"schemas": {name: SCHEMAS[name] for name in sorted(used)}},
    }


def write_documents(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for surface in SURFACES:
        path = folder / f"{surface}.json"
        path.write_text(json.dumps(openapi_document(surface), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for each in write_documents(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi")):
        print(each)
