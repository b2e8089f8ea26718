"""Exactly-once through the real gateway: the whole demo network as processes on loopback,
payments driven through the unchanged SDK, the gateway SIGKILLed under load and restarted.

Every payment the acquirer saw succeed is captured in the ledger exactly once, none it saw
fail is captured, the ledger checks, and every notification the outbox held (including
those not yet acknowledged at the kill) is delivered after the restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from blindgate.ledger import check_ledger
from blindgate.processes import ProcessGroup
from blindgate.storage.migrate import open_store
from blindgate_testbed.layout import RunLayout
from blindgate_testbed.network import build_network, gateway_db_url
from blindgate_testbed.partners.acquirer import AcquirerCallFailed
from blindgate_testbed.partners.signed_http import now_iso
from blindgate_testbed.population import generate_population, write_population_csv
from blindgate_testbed.services import ServiceSpec
from blindgate_testbed.traffic import Scenario, plan_traffic

PAYMENTS = 30
DEADLINE_S = 150


def _start_gateway(spec: ServiceSpec) -> subprocess.Popen[bytes]:
    log = spec.log_path.open("ab")
    return subprocess.Popen(
        list(spec.argv), stdout=log, stderr=subprocess.STDOUT, cwd=spec.cwd, start_new_session=True
    )


def _wait_healthy(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    with httpx.Client(verify=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


def _status(answer: dict[str, Any]) -> str:
    result = answer.get("result") or {}
    return str(result.get("resultStatus", "U"))


def _drive(
    clients: dict[str, Any],
    apps: dict[str, Any],
    scenario: Scenario,
    outcomes: dict[str, str],
    codes: dict[str, str],
) -> None:
    """Pay, and replay the same request until the outcome is known (the API is idempotent)."""
    client = clients[scenario.acquirer_id]
    scanned_at = now_iso()  # a retry sends the first attempt's body, terminal time included
    # The payer's app shows a fresh one-time code; every replay shows the same one.
    code = scenario.payment_code
    if scenario.one_time:
        code = apps[scenario.wallet_id].payment_code(scenario.payment_code)
    deadline = time.monotonic() + DEADLINE_S / 2
    while time.monotonic() < deadline:
        try:
            answer = client.pay_with_code(
                scenario.payment_request_id, scenario.shop, scenario.currency, scenario.value,
                code, scenario.buyer, scanned_at,
            )  # fmt: skip
        except AcquirerCallFailed:
            answer = {}
        if _status(answer) in {"S", "F"}:
            outcomes[scenario.payment_request_id] = _status(answer)
            codes[scenario.payment_request_id] = str((answer.get("result") or {}).get("resultCode"))
            return
        time.sleep(0.5)
    outcomes[scenario.payment_request_id] = "U"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_choice(request: pytest.FixtureRequest) -> str | None:
    """None: the gateway's default SQLite store; else a PostgreSQL URL on a throw-away schema."""
    return None if request.param == "sqlite" else str(request.getfixturevalue("pg_schema_url"))


@pytest.mark.slow
def test_sigkill_the_gateway_under_load(tmp_path: Path, store_choice: str | None) -> None:
    layout = RunLayout(tmp_path / "run").fresh()
    population = generate_population(seed=7, customers_per_wallet=10)
    write_population_csv(population, layout.population_csv)
    network = build_network(layout, population, database_url=store_choice)
    store_url = store_choice or gateway_db_url(layout)
    scenarios = plan_traffic(population, PAYMENTS, seed=7)
    gateway_spec = next(spec for spec in network.services if spec.name == "gateway")
    others = [spec for spec in network.services if spec.name != "gateway"]
    outcomes: dict[str, str] = {}
    codes: dict[str, str] = {}  # the final resultCode each acquirer saw
    gateway = _start_gateway(gateway_spec)
    try:
        with ProcessGroup() as group:
            for spec in others:
                group.start(spec.child())
            group.wait_ready()
            _wait_healthy(gateway_spec.health_url)
            network.publish_key_bundles()  # the agents seal only to keys the transparency log vouches for
            clients, apps = network.acquirer_clients(), network.wallet_apps()
            threads = [
                threading.Thread(target=_drive, args=(clients, apps, s, outcomes, codes)) for s in scenarios
            ]
            for index, thread in enumerate(threads):
                thread.start()
                if index == len(threads) // 2:  # kill under load, with payments in flight
                    in_flight, unsent = _wait_for_load(store_url)
                    os.killpg(gateway.pid, signal.SIGKILL)
                    gateway.wait(timeout=10)
                    time.sleep(0.5)
                    gateway = _start_gateway(gateway_spec)
                    _wait_healthy(gateway_spec.health_url)
            for thread in threads:
                thread.join(timeout=DEADLINE_S)
            delivered = _wait_for_notifications(store_url)
            group.check_alive()
    finally:
        if gateway.poll() is None:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(timeout=10)
    print(f"at the kill: {in_flight} payments in flight, {unsent} notifications unsent")
    assert len(outcomes) == PAYMENTS
    assert "U" not in outcomes.values(), "a payment's outcome stayed unknown after the restart"
    assert delivered, "notifications left undelivered after the restart"
    engine = open_store(store_url)
    with engine.connect() as conn:
        captured = _captured_requests(conn)
        report = check_ledger(conn)
        wrong = sorted({r for r, status in outcomes.items() if status == "F"} & set(captured))
        states = conn.execute(
            sa.text("SELECT payment_request_id, status, result_code FROM gw_payments")
        ).all()
        states_of_wrong = [(*row, codes[row[0]]) for row in states if row[0] in wrong]
    engine.dispose()
    assert report.ok, report.problems
    succeeded = {request for request, status in outcomes.items() if status == "S"}
    failed = {request for request, status in outcomes.items() if status == "F"}
    assert succeeded, "no payment succeeded"
    assert succeeded <= set(captured), "an acknowledged payment was lost"
    assert not failed & set(captured), f"a payment the acquirer saw fail was captured: {states_of_wrong}"
    assert all(count == 1 for count in captured.values()), "a payment was captured twice"


def _captured_requests(conn: sa.Connection) -> dict[str, int]:
    """paymentRequestId -> number of CAPTURE postings of its payment."""
    rows = conn.execute(
        sa.text(
            "SELECT p.payment_request_id, COUNT(e.id) FROM gw_payments p JOIN ledger_entries e"
            " ON e.payment_id = p.payment_id AND e.event_type = 'CAPTURE' GROUP BY p.payment_request_id"
        )
    ).all()
    return {request: int(count) for request, count in rows}


def _wait_for_load(url: str, timeout_s: float = 10) -> tuple[int, int]:
    """Wait (bounded) until a payment is in flight; returns (in flight, notifications unsent)."""
    deadline = time.monotonic() + timeout_s
    while True:
        in_flight = _count(url, "gw_payments WHERE status = 'PROCESSING'")
        if in_flight or time.monotonic() > deadline:
            return in_flight, _count(url, "gw_notifications WHERE delivered_at IS NULL")
        time.sleep(0.02)


def _count(url: str, where: str) -> int:
    engine = open_store(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {where}")).scalar_one())
    finally:
        engine.dispose()


def _wait_for_notifications(url: str, timeout_s: float = 60) -> bool:
    engine = open_store(url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                waiting = conn.execute(
                    sa.text("SELECT COUNT(*) FROM gw_notifications WHERE delivered_at IS NULL")
                ).scalar_one()
            if waiting == 0:
                return True
            time.sleep(0.5)
        return False
    finally:
        engine.dispose()
