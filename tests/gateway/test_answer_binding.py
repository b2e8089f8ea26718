"""A partner's signed answer counts only for the request it names (`gateway.calls`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from blindgate.api.calls import CookielessClient, NoAnswer
from blindgate.api.models import PAY_PATH, WALLET_PAY_PATH
from blindgate.api.network import WALLET, Partner
from blindgate.api.signed import digest_of_request, signed_response
from blindgate.crypto.keystore import KeyStore, PublicBundle
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.calls import PartnerCaller
from tests.gateway.harness import build, pay_body, run


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[KeyStore, KeyStore]:
    root = tmp_path_factory.mktemp("keys")
    return (
        KeyStore.create(Path(root) / "gateway", "GATEWAY", signing_only=True),
        KeyStore.create(Path(root) / "wallet", "WALLET_KR"),
    )


def call_with_answer(stores: tuple[KeyStore, KeyStore], answer: dict[str, object]) -> dict[str, object]:
    gateway, wallet = stores
    signer, version = wallet.signing_key(ED25519)

    def agent(request: httpx.Request) -> httpx.Response:
        answering = digest_of_request(request.headers, WALLET_PAY_PATH, request.content)
        signed = signed_response(WALLET_PAY_PATH, answer, "WALLET_KR_AGENT", signer, version, answering)
        return httpx.Response(200, headers=dict(signed.headers), content=bytes(signed.body))

    partner = Partner(
        party_id="WALLET_KR",
        role=WALLET,
        client_id="WALLET_KR_AGENT",
        currency="KRW",
        agent_url="http://wallet.test",
        keys=PublicBundle.from_json(wallet.public_bundle()),
        code_prefixes=("28",),
    )
    caller = PartnerCaller("GATEWAY", gateway, CookielessClient(transport=httpx.MockTransport(agent)))
    request = {"paymentRequestId": "BG-this-one", "payToAmount": {"currency": "KRW", "value": "1000"}}
    return asyncio.run(caller.call(partner, WALLET_PAY_PATH, request, 5.0))


SUCCESS = {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"}


def test_an_answer_naming_this_request_counts(stores: tuple[KeyStore, KeyStore]) -> None:
    answer = call_with_answer(stores, {"result": SUCCESS, "paymentRequestId": "BG-this-one"})
    assert answer["result"] == SUCCESS


def test_a_signed_answer_about_another_request_is_no_answer(stores: tuple[KeyStore, KeyStore]) -> None:
    replayed = {"result": SUCCESS, "paymentRequestId": "BG-another-one", "paymentId": "W1"}
    with pytest.raises(NoAnswer, match="another request"):
        call_with_answer(stores, replayed)


def test_the_wallet_agent_names_the_request_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real agents: the pay answer reaching the gateway names the gateway's id."""
    seen: list[tuple[Any, Any]] = []
    original = PartnerCaller.call

    async def spying(
        self: PartnerCaller, partner: Partner, path: str, payload: dict[str, Any], timeout_s: float
    ) -> dict[str, Any]:
        answer = await original(self, partner, path, payload, timeout_s)
        if path == WALLET_PAY_PATH:
            seen.append((payload["paymentRequestId"], answer.get("paymentRequestId")))
        return answer

    monkeypatch.setattr(PartnerCaller, "call", spying)
    net = build(tmp_path)
    assert run(net.sdk(PAY_PATH, pay_body("bind-1", 1000)))["result"]["resultStatus"] == "S"
    [(asked, named)] = seen
    assert asked == named and asked.startswith("BG")
