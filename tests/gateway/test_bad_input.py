"""Bad input: each gets its AMS code, status F, HTTP 200, and stores nothing."""

import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from blindgate.api.models import PAY_PATH
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.gateway.app import engine_of
from tests.gateway.harness import PAYER, LocalNetwork, build, order_code_body, pay_body, run


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> LocalNetwork:
    return build(tmp_path_factory.mktemp("net"))


def stored(net: LocalNetwork) -> int:
    with engine_of(net.gateway_app).connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM gw_payments")).scalar_one())


def code_of(answer: dict[str, object]) -> str:
    outcome = answer["result"]
    assert isinstance(outcome, dict) and outcome["resultStatus"] == "F"
    return str(outcome["resultCode"])


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("malformed_json", "PARAM_ILLEGAL"),
        ("missing_amount", "PARAM_ILLEGAL"),
        ("mistyped_amount", "PARAM_ILLEGAL"),
        ("oversized_id", "PARAM_ILLEGAL"),
        ("bad_signature", "INVALID_SIGNATURE"),
        ("missing_signature", "INVALID_SIGNATURE"),
        ("stale_time", "INVALID_SIGNATURE"),
        ("unknown_client", "KEY_NOT_FOUND"),
        ("unknown_key_version", "KEY_NOT_FOUND"),
        ("unknown_wallet_code", "INVALID_CODE"),
        ("unknown_currency", "CURRENCY_NOT_SUPPORT"),
    ],
)
def test_sdk_side_bad_input(net: LocalNetwork, case: str, code: str) -> None:
    body = pay_body(f"bad-{case}")
    kwargs: dict[str, object] = {}
    if case == "malformed_json":
        kwargs["raw"] = b'{"paymentRequestId": '
    elif case == "missing_amount":
        del body["paymentAmount"]
    elif case == "mistyped_amount":
        body["paymentAmount"] = {"currency": "SGD", "value": 10.5}
    elif case == "oversized_id":
        body["paymentRequestId"] = "x" * 65
    elif case == "bad_signature":
        kwargs["headers"] = {"signature": "algorithm=RSA256,keyVersion=1,signature=AAAA"}
    elif case == "missing_signature":
        kwargs["headers"] = {"signature": ""}
    elif case == "stale_time":
        kwargs["headers"] = {"request-time": "2020-01-01T00:00:00+00:00"}
    elif case == "unknown_client":
        kwargs["client_id"] = "SOMEONE_ELSE"
    elif case == "unknown_key_version":
        kwargs["headers"] = {"signature": "algorithm=ED25519,keyVersion=9,signature=AAAA"}
    elif case == "unknown_wallet_code":
        body["paymentMethod"]["paymentMethodId"] = "9911112222333344"
    elif case == "unknown_currency":
        body["paymentAmount"] = {"currency": "XXX", "value": "100"}
    before = stored(net)
    answer = run(net.sdk(PAY_PATH, body, **kwargs))  # type: ignore[arg-type]
    assert code_of(answer) == code
    assert stored(net) == before
    text = json.dumps(answer)
    assert "Traceback" not in text and PAYER.payment_code not in text and PAYER.email not in text


async def gateway_call(
    net: LocalNetwork,
    body: dict[str, object],
    keys_dir: Path,
    *,
    client_id: str = "ACQ_SG_AGENT",
    raw: bytes | None = None,
) -> dict[str, object]:
    from blindgate.crypto.keystore import KeyStore

    key, version = KeyStore(keys_dir).signing_key(ED25519)
    payload = raw if raw is not None else encode(body)
    headers = request_headers(PAY_PATH, payload, client_id, key, version)
    async with httpx.AsyncClient(transport=net.router) as client:
        response = await client.post("http://gateway.test" + PAY_PATH, content=payload, headers=headers)
    assert response.status_code == 200
    answer: dict[str, object] = response.json()
    return answer


def test_gateway_refuses_a_payment_code_in_clear(net: LocalNetwork) -> None:
    body = pay_body("clear-code")
    body["paymentMethod"]["customerBelongsTo"] = "WALLET_KR"
    before = stored(net)
    answer = run(gateway_call(net, body, net.root / "acquirer-agent-keys"))
    assert code_of(answer) == "PARAM_ILLEGAL" and stored(net) == before
    assert PAYER.payment_code not in json.dumps(answer)


def test_gateway_refuses_a_wallet_as_acquirer(net: LocalNetwork) -> None:
    answer = run(
        gateway_call(net, pay_body("w"), net.root / "wallet-agent-keys", client_id="WALLET_KR_AGENT")
    )
    assert code_of(answer) == "KEY_NOT_FOUND"


def test_tampered_ciphertext_fails_at_the_wallet_agent_and_debits_nothing(net: LocalNetwork) -> None:
    from blindgate.agent.policy import FieldPolicy, seal_message
    from blindgate.api.contexts import seal_context

    wallet = net.network.partner("WALLET_KR")
    assert wallet is not None
    body = pay_body("tampered")
    body["paymentMethod"]["customerBelongsTo"] = "WALLET_KR"
    sealed, _ = seal_message(
        body, FieldPolicy.load(), wallet.keys.recipient_key, seal_context("ACQ_SG", "tampered")
    )
    envelope = sealed["paymentMethod"]["paymentMethodId"]
    sealed["paymentMethod"]["paymentMethodId"] = (
        envelope[:-3] + ("A" if envelope[-3] != "A" else "B") + envelope[-2:]
    )
    before = net.wallet_book.balance(PAYER.customer_id)
    answer = run(gateway_call(net, sealed, net.root / "acquirer-agent-keys"))
    assert code_of(answer) == "PARAM_ILLEGAL"
    assert net.wallet_book.balance(PAYER.customer_id) == before


def test_unknown_fields_on_non_pay_paths_are_refused_not_sent_in_clear(net: LocalNetwork) -> None:
    from blindgate.api.models import INQUIRY_PATH

    answer = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "x", "buyerEmail": PAYER.email}))
    assert code_of(answer) == "PARAM_ILLEGAL" and PAYER.email not in json.dumps(answer)
    assert "buyerEmail" in answer["result"]["resultMessage"]  # type: ignore[index]


def test_a_misconfigured_partner_cannot_send_payer_data_in_clear(tmp_path: Path) -> None:
    """An acquirer whose field policy names the buyer's email clear (built from code: the policy
    file loader refuses that): the gateway refuses the pay, stores nothing, and nobody is debited."""
    from blindgate.agent.app import Backend, create_acquirer_agent_app
    from blindgate.agent.journal import Journal
    from blindgate.agent.policy import FieldPolicy
    from blindgate.crypto.keystore import KeyStore
    from tests.gateway.harness import SDK_CLIENT

    net = build(tmp_path)
    shipped = FieldPolicy.load()
    leaky = FieldPolicy(shipped.exact | {"order.buyer.buyerEmail"}, shipped.prefixes)
    agent = create_acquirer_agent_app(
        net.network,
        KeyStore(net.root / "acquirer-agent-keys"),
        Backend(SDK_CLIENT, net.merchant_key.public_key()),
        leaky,
        journal=Journal(net.root / "leaky-journal.db"),
        transport=net.router,
    )
    net.router.add("a1-agent.test", agent)
    before = (stored(net), net.wallet_book.balance(PAYER.customer_id))
    answer = run(net.sdk(PAY_PATH, pay_body("leaky-1")))
    assert code_of(answer) == "PARAM_ILLEGAL"
    assert "order.buyer.buyerEmail" in answer["result"]["resultMessage"]
    assert (stored(net), net.wallet_book.balance(PAYER.customer_id)) == before


@pytest.mark.parametrize(
    "bad",
    [b"9" * 5000, b"9" * 40, b"NaN", b'"\\ud800"'],
    ids=["5000-digits", "beyond-int64", "nan", "lone-surrogate"],
)
def test_malformed_json_is_refused_at_the_gateway_and_stores_nothing(net: LocalNetwork, bad: bytes) -> None:
    """A pay the gateway would take, but for one value in a clear field: PARAM_ILLEGAL (F), never
    UNKNOWN_EXCEPTION (U), and no payment or ledger hold left behind."""
    from blindgate.agent.policy import FieldPolicy, seal_message
    from blindgate.api.contexts import SEALED_AT_FIELD, seal_context

    wallet = net.network.partner("WALLET_KR")
    assert wallet is not None
    body = pay_body(f"malformed-{len(bad)}")
    body["paymentMethod"]["customerBelongsTo"] = "WALLET_KR"
    context = seal_context("ACQ_SG", body["paymentRequestId"], 1)
    sealed, _ = seal_message(body, FieldPolicy.load(), wallet.keys.recipient_key, context)
    sealed |= {SEALED_AT_FIELD: 1, "paymentFactor": {"note": "PLACEHOLDER"}}
    raw = json.dumps(sealed).encode().replace(b'"PLACEHOLDER"', bad)
    keys = KeyStore(net.root / "acquirer-agent-keys")
    key, version = keys.signing_key(ED25519)
    before = stored(net)

    async def post() -> dict[str, object]:
        headers = request_headers(PAY_PATH, raw, "ACQ_SG_AGENT", key, version)
        async with httpx.AsyncClient(transport=net.router) as client:
            response = await client.post("http://gateway.test" + PAY_PATH, content=raw, headers=headers)
        answer: dict[str, object] = response.json()
        return answer

    assert code_of(run(post())) == "PARAM_ILLEGAL" and stored(net) == before


def rows(net: LocalNetwork) -> tuple[int, ...]:
    """Payments, order codes and ledger lines the gateway holds: refused input adds none."""
    tables = ("gw_payments", "gw_order_codes", "ledger_entries", "ledger_lines")
    with engine_of(net.gateway_app).connect() as conn:
        return tuple(int(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in tables)


@pytest.mark.parametrize(
    ("scenario", "payment", "order", "code"),
    [
        ("user-presented", "EUR", "SGD", "PARAM_ILLEGAL"),  # the case found: it was posted in EUR
        ("user-presented", "SGD", "EUR", "PARAM_ILLEGAL"),
        ("user-presented", "EUR", "EUR", "CURRENCY_NOT_SUPPORT"),  # consistent, not the acquirer's
        ("user-presented", "EUR", None, "CURRENCY_NOT_SUPPORT"),
        ("order-code", "EUR", "SGD", "PARAM_ILLEGAL"),
        ("order-code", "JPY", "JPY", "CURRENCY_NOT_SUPPORT"),
    ],
)
def test_inconsistent_currencies_are_refused_and_store_nothing(
    net: LocalNetwork, scenario: str, payment: str, order: str | None, code: str
) -> None:
    """AMS: paymentAmount is in the order's currency; an acquirer (ACQ_SG, SGD) is settled in its
    own. A pay that breaks either is an F with its code, no payment, no hold, nobody debited."""
    request_id = f"ccy-{scenario}-{payment}-{order}"
    body = pay_body(request_id) if scenario == "user-presented" else order_code_body(request_id)
    body["paymentAmount"]["currency"] = payment
    if order is None:
        del body["order"]["orderAmount"]
    else:
        body["order"]["orderAmount"]["currency"] = order
    before = rows(net), net.wallet_book.balance(PAYER.customer_id)
    answer = run(net.sdk(PAY_PATH, body))
    assert code_of(answer) == code
    assert (rows(net), net.wallet_book.balance(PAYER.customer_id)) == before
    assert "currenc" in answer["result"]["resultMessage"]  # type: ignore[index]


def test_consistent_currencies_still_pay(net: LocalNetwork) -> None:
    """The check refuses only the mismatch: the same request in SGD throughout succeeds."""
    answer = run(net.sdk(PAY_PATH, pay_body("ccy-consistent")))
    assert answer["result"]["resultStatus"] == "S"  # type: ignore[index]
