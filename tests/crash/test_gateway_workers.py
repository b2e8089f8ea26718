"""Scale-out with real processes: gateway workers over one PostgreSQL make one payment per request.

Two `blindgate gateway` processes listen on two ports over one throw-away PostgreSQL schema;
a minimal wallet (signed, idempotent like the real one: it debits a gateway payment id once)
answers over real HTTP from a uvicorn thread in this process. The test fires the same signed
pay request at both processes at once, many times over, with a changed-amount copy racing
them, then replays both after the dust settles. Per paymentRequestId: one payment row, one
pending and one capture posting, every answer to the same request the same, the changed
one REPEAT_REQ_INCONSISTENT, one debit at the wallet; the whole ledger checks. The
processes' own /metrics prove that both served. A last test starts `--workers 2` once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from blindgate.agent.policy import FieldPolicy, seal_message, sealed_digest
from blindgate.api.contexts import RISK_PURPOSE, SEALED_DIGEST_FIELD, seal_context
from blindgate.api.models import PAY_PATH, WALLET_PAY_PATH
from blindgate.api.network import load_network, network_document
from blindgate.api.signed import digest_of_request, encode, request_headers, signed_response, verify_request
from blindgate.crypto.errors import UnknownKey
from blindgate.crypto.keystore import KeyStore, PublicBundle
from blindgate.crypto.sealing import seal_field
from blindgate.crypto.signatures import ED25519, VerifyingKey
from blindgate.gateway.app import create_gateway_app, engine_of
from blindgate.ledger import check_ledger
from blindgate.net import free_port
from blindgate.processes import ProcessGroup
from blindgate.storage import open_engine
from blindgate_testbed.services import ServiceSpec

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

GATEWAY, WALLET, ACQUIRER = "GATEWAY", "WALLET_KR", "ACQ_SG"
REQUESTS = 20  # distinct paymentRequestIds
COPIES = 3  # identical copies of each, fired at once, alternating between the processes
TIMEOUT_S = 30.0  # every HTTP wait is bounded


# --- the wallet: signed, idempotent, over real HTTP ------------------------------------------------


@dataclass
class WalletBook:
    """What the wallet saw: every pay call, and one debit per gateway payment id (its idempotency)."""

    calls: list[tuple[str, str]] = field(default_factory=list)  # (acquirer request id, gateway id)
    debits: dict[str, tuple[str, int]] = field(default_factory=dict)  # gateway id -> (request, amount)


def _wallet_app(keys: dict[str, KeyStore], book: WalletBook) -> Starlette:
    """Answers pay SUCCESS, signed, with a customerId sealed to the acquirer and a pseudonym.

    Like the real wallet it debits a gateway payment id once, however often it is asked, and
    refuses a call the gateway did not sign.
    """
    signer, version = keys["wallet"].signing_key(ED25519)
    gateway_key = PublicBundle.from_json(keys["gateway"].public_bundle())

    def lookup(client_id: str, algorithm: str, key_version: int) -> VerifyingKey:
        if client_id != GATEWAY:
            raise UnknownKey("only the gateway calls the wallet")
        return gateway_key.verifying_key(algorithm, key_version)

    async def pay(request: Request) -> Response:
        body = await request.body()
        verify_request(request.headers, WALLET_PAY_PATH, body, lookup)
        call = json.loads(body)
        gateway_id, request_id = call["paymentRequestId"], call["acquirerPaymentRequestId"]
        book.calls.append((request_id, gateway_id))
        book.debits.setdefault(gateway_id, (request_id, int(call["payToAmount"]["value"])))
        answer = {
            "result": {"resultCode": "SUCCESS", "resultStatus": "S", "resultMessage": "success"},
            "paymentId": f"W{gateway_id}",
            "customerId": seal_field(
                b'"KRC0000001"', keys["acquirer"].recipient_key(), "customerId", f"{ACQUIRER}:{request_id}"
            ),
            "customerPseudonym": keys["wallet"].pseudonym(RISK_PURPOSE, request_id),
        }
        answering = digest_of_request(request.headers, WALLET_PAY_PATH, body)
        return signed_response(WALLET_PAY_PATH, answer, f"{WALLET}_AGENT", signer, version, answering)

    return Starlette(routes=[Route(WALLET_PAY_PATH, pay, methods=["POST"])])


@contextlib.contextmanager
def _serve_in_thread(app: Starlette, port: int) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT_S
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the wallet did not start"
        time.sleep(0.05)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=TIMEOUT_S)


# --- the network, the gateway processes and the requests -------------------------------------------


def _keys(root: Path) -> dict[str, KeyStore]:
    return {
        "gateway": KeyStore.create(root / "gateway", GATEWAY, signing_only=True),
        "wallet": KeyStore.create(root / "wallet", WALLET),
        "acquirer": KeyStore.create(root / "acquirer", ACQUIRER),
    }


def _network_file(root: Path, keys: dict[str, KeyStore], wallet_url: str) -> Path:
    document = network_document(
        {"party_id": GATEWAY, "url": "http://127.0.0.1", "keys": keys["gateway"].public_bundle(),
         "wallet_timeout_s": TIMEOUT_S},
        [
            {"party_id": WALLET, "role": "wallet", "client_id": f"{WALLET}_AGENT", "currency": "KRW",
             "code_prefixes": ["28"], "agent_url": wallet_url, "keys": keys["wallet"].public_bundle()},
            {"party_id": ACQUIRER, "role": "acquirer", "client_id": f"{ACQUIRER}_AGENT", "currency": "SGD",
             "agent_url": "http://127.0.0.1:9", "keys": keys["acquirer"].public_bundle()},
        ],
    )  # fmt: skip
    path = root / "network.json"
    path.write_text(json.dumps(document))
    return path


def _gateway_spec(root: Path, name: str, network: Path, db_url: str, port: int, *extra: str) -> ServiceSpec:
    keys = root / "keys" / "gateway"
    argv = [sys.executable, "-m", "blindgate.cli", "gateway", "--network", str(network),
            "--keys", str(keys), "--db", db_url, "--port", str(port), *extra]  # fmt: skip
    return ServiceSpec(name, argv, root / f"{name}.log", f"http://127.0.0.1:{port}/health")


def _create_tables(root: Path, network: Path, db_url: str) -> None:
    """Every table the gateway app makes, once, before the processes start: two processes
    creating them at the same moment race on PostgreSQL's catalogue (as `--workers` avoids)."""
    app = create_gateway_app(load_network(network), KeyStore(root / "keys" / "gateway"), db_url)
    engine_of(app).dispose()


def _sealed_body(keys: dict[str, KeyStore], request_id: str, value: int) -> dict[str, Any]:
    """A pay request as the acquirer's agent sends it: payer fields sealed to the wallet."""
    body: dict[str, Any] = {
        "productCode": "IN_STORE_PAYMENT",
        "paymentRequestId": request_id,
        "paymentAmount": {"currency": "SGD", "value": str(value)},
        "paymentMethod": {
            "paymentMethodType": "CONNECT_WALLET",
            "customerBelongsTo": WALLET,
            "paymentMethodId": "2800000000000001",
        },
        "order": {
            "referenceOrderId": request_id,
            "orderDescription": "workers",
            "orderAmount": {"currency": "SGD", "value": str(value)},
            "buyer": {"buyerPhoneNo": "+65-90000001", "buyerEmail": "p1@example.sg"},
        },
    }
    context = seal_context(ACQUIRER, request_id)
    sealed, values = seal_message(body, FieldPolicy.load(), keys["wallet"].recipient_key(), context)
    sealed[SEALED_DIGEST_FIELD] = sealed_digest(keys["acquirer"].pseudonym_key(), request_id, values)
    return sealed


def _changed_amount(body: dict[str, Any]) -> dict[str, Any]:
    amount = body["paymentAmount"]
    return {**body, "paymentAmount": {**amount, "value": str(int(amount["value"]) + 1)}}


@dataclass(frozen=True)
class Answer:
    request_id: str
    changed: bool  # the copy with another amount
    port: int
    code: str
    payment_id: str | None


async def _fire(keys: dict[str, KeyStore], shots: list[tuple[int, bool, dict[str, Any]]]) -> list[Answer]:
    """Send every shot (port, changed?, body) at once, each signed as the acquirer's agent."""
    signer, version = keys["acquirer"].signing_key(ED25519)
    limits = httpx.Limits(max_connections=len(shots))
    async with httpx.AsyncClient(timeout=TIMEOUT_S, limits=limits) as client:

        async def shoot(port: int, changed: bool, body: dict[str, Any]) -> Answer:
            payload = encode(body)
            headers = request_headers(PAY_PATH, payload, f"{ACQUIRER}_AGENT", signer, version)
            response = await client.post(
                f"http://127.0.0.1:{port}{PAY_PATH}", content=payload, headers=headers
            )
            assert response.status_code == 200
            answer = response.json()
            code = answer["result"]["resultCode"]
            return Answer(body["paymentRequestId"], changed, port, code, answer.get("paymentId"))

        return list(await asyncio.gather(*(shoot(*shot) for shot in shots)))


def _pay_requests_served(port: int) -> int:
    """The process's own count of pay requests answered (its Prometheus counter)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT_S).text
    counts = re.findall(r'^blindgate_gateway_requests_total\{operation="pay",[^}]*\} (\S+)$', text, re.M)
    return int(sum(float(count) for count in counts))


def _store_facts(db_url: str) -> tuple[dict[str, list[tuple[str, int, int]]], Counter[str], Any]:
    """paymentRequestId -> its payment rows (id, amount, wallet amount); event keys; the ledger check."""
    engine = open_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT payment_request_id, payment_id, amount, wallet_amount FROM gw_payments")
            ).all()
            keys = conn.execute(sa.text("SELECT event_key FROM ledger_entries")).scalars().all()
            report = check_ledger(conn)
    finally:
        engine.dispose()
    made: dict[str, list[tuple[str, int, int]]] = {}
    for request_id, payment_id, amount, wallet_amount in rows:
        made.setdefault(request_id, []).append((payment_id, int(amount), int(wallet_amount)))
    return made, Counter(keys), report


# --- the tests ---------------------------------------------------------------------------------------


def test_concurrent_duplicates_on_two_gateway_processes(tmp_path: Path, pg_schema_url: str) -> None:
    keys = _keys(tmp_path / "keys")
    book = WalletBook()
    wallet_port, ports = free_port(), (free_port(), free_port())
    network = _network_file(tmp_path, keys, f"http://127.0.0.1:{wallet_port}")
    _create_tables(tmp_path, network, pg_schema_url)
    bodies = {f"wk-{n:02d}": _sealed_body(keys, f"wk-{n:02d}", 1000 + n) for n in range(REQUESTS)}
    # Each request: COPIES identical copies alternating between the processes, and one with a
    # changed amount racing them on the other process of the first copy.
    storm = [
        (ports[(n + copy) % 2], False, body)
        for n, body in enumerate(bodies.values())
        for copy in range(COPIES)
    ] + [(ports[(n + 1) % 2], True, _changed_amount(body)) for n, body in enumerate(bodies.values())]
    random.Random(3).shuffle(storm)  # so the changed copy is sent first for some requests
    with _serve_in_thread(_wallet_app(keys, book), wallet_port), ProcessGroup() as group:
        for index, port in enumerate(ports):
            group.start(_gateway_spec(tmp_path, f"gateway-{index}", network, pg_schema_url, port).child())
        group.wait_ready()
        answers = asyncio.run(_fire(keys, storm))
        # Afterwards, each request again and its changed copy, on both processes.
        replays = [(port, changed, body if not changed else _changed_amount(body))
                   for body in bodies.values() for port in ports for changed in (False, True)]  # fmt: skip
        replayed = asyncio.run(_fire(keys, replays))
        served = [_pay_requests_served(port) for port in ports]
        group.check_alive()
    made, event_keys, report = _store_facts(pg_schema_url)

    sent = Counter(port for port, _, _ in storm + replays)
    assert served == [sent[port] for port in ports], "each process answered what it was sent"
    for request_id in bodies:
        _check_one_request(request_id, answers, replayed, made, event_keys, book)
    assert sum(1 for key in event_keys if key.startswith("resolve:")) == REQUESTS
    assert len(book.debits) == REQUESTS, "the wallet was debited for a payment that was not made"
    assert report.ok, report.problems
    changed_won = sum(amount != 1000 + int(r.split("-")[1]) for r, [(_, amount, _)] in made.items())
    print(
        f"served per process {served}; wallet pay calls {len(book.calls)} for {REQUESTS} payments;"
        f" the changed-amount copy won {changed_won} of {REQUESTS} races"
    )


def _check_one_request(
    request_id: str,
    answers: list[Answer],
    replayed: list[Answer],
    made: dict[str, list[tuple[str, int, int]]],
    event_keys: Counter[str],
    book: WalletBook,
) -> None:
    """One payment, one outcome per version of the request, one capture, one debit."""
    rows = made.get(request_id, [])
    assert len(rows) == 1, f"{request_id}: {len(rows)} payment rows"
    payment_id, amount, wallet_amount = rows[0]
    mine = [a for a in answers + replayed if a.request_id == request_id]
    # Whichever version won the race made the payment; every copy of the other one is refused.
    winner_changed = amount != 1000 + int(request_id.split("-")[1])
    for answer in mine:
        if answer.changed == winner_changed:
            assert (answer.code, answer.payment_id) == ("SUCCESS", payment_id), answer
        else:
            assert answer.code == "REPEAT_REQ_INCONSISTENT", answer
    assert event_keys[f"payment:{payment_id}"] == 1 and event_keys[f"resolve:{payment_id}"] == 1
    asked = {gateway_id for request, gateway_id in book.calls if request == request_id}
    assert asked == {payment_id}, f"{request_id}: the wallet was asked about {asked}"
    assert book.debits[payment_id] == (request_id, wallet_amount)


def test_workers_2_start_and_serve(tmp_path: Path, pg_schema_url: str) -> None:
    """`blindgate gateway --workers 2`: two uvicorn worker processes behind one port make payments."""
    keys = _keys(tmp_path / "keys")
    book = WalletBook()
    wallet_port, port = free_port(), free_port()
    network = _network_file(tmp_path, keys, f"http://127.0.0.1:{wallet_port}")
    bodies = [_sealed_body(keys, f"wk2-{n}", 700 + n) for n in range(6)]  # --workers creates the tables
    with _serve_in_thread(_wallet_app(keys, book), wallet_port), ProcessGroup() as group:
        spec = _gateway_spec(tmp_path, "gateway", network, pg_schema_url, port, "--workers", "2")
        group.start(spec.child())
        group.wait_ready()
        workers = _children(group)
        answers = asyncio.run(_fire(keys, [(port, False, body) for body in bodies for _ in range(2)]))
        group.check_alive()
    made, event_keys, report = _store_facts(pg_schema_url)
    assert len(workers) == 2, f"uvicorn runs {len(workers)} workers"
    assert {a.code for a in answers} == {"SUCCESS"}
    assert sorted(made) == sorted(b["paymentRequestId"] for b in bodies)
    assert all(len(rows) == 1 for rows in made.values())
    assert len(book.debits) == len(bodies)
    assert sum(1 for key in event_keys if key.startswith("resolve:")) == len(bodies)
    assert report.ok, report.problems


def _children(group: ProcessGroup) -> list[int]:
    """The worker processes uvicorn forked (Linux /proc): the children of the command's process."""
    [name] = group.names()  # the one service this test started
    pid = group.pid(name)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        found = [
            int(stat.parent.name)
            for stat in Path("/proc").glob("[0-9]*/stat")
            if _parent_of(stat) == pid and _is_python(stat.parent)
        ]
        if len(found) >= 2 or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _parent_of(stat: Path) -> int:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _is_python(proc: Path) -> bool:
    """A worker, not uvicorn's other helper processes (multiprocessing's resource tracker)."""
    try:
        return b"resource_tracker" not in (proc / "cmdline").read_bytes()
    except OSError:
        return False
