"""A wallet side for the over-the-wire benchmarks (`wire.py`, `soak.py`), served in its own process.

It answers the gateway's four wallet calls as a wallet's agent would, signed and bound to the
request it answers (`blindgate.api.signed`): pay SUCCESS (a customerId sealed to the acquirer
and a pseudonym), refund SUCCESS, cancel SUCCESS, and inquiry with what it did. It keeps what
it did — each payment debited, refunded or cancelled, and how many times it was asked — and
``GET /state`` hands it to the benchmark, which checks the gateway's books against it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from blindgate.api.contexts import RISK_PURPOSE
from blindgate.api.models import WALLET_CANCEL_PATH, WALLET_PAY_PATH, WALLET_REFUND_PATH
from blindgate.api.signed import digest_of_request, signed_response
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.sealing import seal_field
from blindgate.crypto.signatures import ED25519

HOST = "127.0.0.1"
SUCCESS = {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}


def serve(keys_dir: str, port: int, cert: str | None, key: str | None) -> None:
    """Run the responder (the target of a spawned process) until killed."""
    import uvicorn
    from starlette.datastructures import Headers

    wallet, acquirer = KeyStore(Path(keys_dir) / "wallet"), KeyStore(Path(keys_dir) / "acquirer")
    signer, version = wallet.signing_key(ED25519)
    customer = seal_field(b'"KRC0000001"', acquirer.recipient_key(), "customerId", "ACQ_SG:x")
    pseudonyms = [wallet.pseudonym(RISK_PURPOSE, f"KRC{i:07d}") for i in range(1000)]
    paid: Counter[str] = Counter()  # the gateway's payment id -> times debited (must stay 1)
    refunded: Counter[str] = Counter()
    cancelled: set[str] = set()

    def paid_answer(payment_id: str) -> dict[str, Any]:
        return {
            "result": SUCCESS,
            "paymentId": f"WP{payment_id}",
            "customerId": customer,
            "customerPseudonym": pseudonyms[hash(payment_id) % 1000],
        }

    def answer_to(path: str, request: dict[str, Any]) -> dict[str, Any]:
        payment_id = str(request.get("paymentRequestId"))
        if path == WALLET_PAY_PATH:
            if payment_id not in paid:  # idempotent: a repeated pay debits once
                paid[payment_id] += 1
            return paid_answer(payment_id)
        if path == WALLET_REFUND_PATH:
            refunded[str(request.get("refundRequestId"))] += 1
            return {"result": SUCCESS, "refundRequestId": request.get("refundRequestId")}
        if path == WALLET_CANCEL_PATH:
            cancelled.add(payment_id)
            return {"result": SUCCESS}
        if payment_id in paid and payment_id not in cancelled:  # inquiry
            return {**paid_answer(payment_id), "paymentResult": SUCCESS}
        return {"result": SUCCESS, "paymentResult": {"resultCode": "ORDER_NOT_EXIST", "resultStatus": "F"}}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "GET":
            state = {"paid": dict(paid), "refunded": dict(refunded), "cancelled": sorted(cancelled)}
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": json.dumps(state).encode()})
            return
        path = scope["path"]
        answering = digest_of_request(Headers(scope=scope), path, body)
        answer = answer_to(path, json.loads(body))
        await signed_response(path, answer, "WALLET_KR_AGENT", signer, version, answering)(
            scope, receive, send
        )

    uvicorn.run(
        app, host=HOST, port=port, log_level="warning", access_log=False, ssl_certfile=cert, ssl_keyfile=key
    )
