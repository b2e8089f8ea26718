"""`blindgate-testbed network init|up`: a directory that describes a whole network, a network that
stays up until SIGTERM, and an acquirer's own official-SDK client (`com.alipay.ams.api`'s
DefaultAlipayClient, unchanged) paying through it with nothing but ``sdk-client.json``."""

from __future__ import annotations

import csv
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blindgate.agent.commands import load_agent
from blindgate.api.network import load_network
from blindgate.api.openapi import openapi_document
from blindgate_testbed.network_command import main as network_main
from blindgate_testbed.plan import Ports, read_services
from tests.sdk_port import skip_unless_port_443_free

AGENT_HOST = 31  # 127.0.0.31:443: no other test's address


def _free_port_run(count: int) -> int:
    """A base port with ``count`` free consecutive ports after it."""
    for _ in range(50):
        base = Ports().take()
        if base + count > 65000:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                probe = socket.socket()
                sockets.append(probe)
                probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for probe in sockets:
                probe.close()
    raise AssertionError("no run of free ports")


def _init(directory: Path, *extra: str) -> int:
    return network_main(["init", str(directory), *extra])


def test_init_writes_a_whole_network_the_shipped_commands_accept(tmp_path: Path) -> None:
    root = tmp_path / "net"
    assert _init(root, "--wallets", "4", "--acquirers", "3", "--customers", "2", "--port-base", "20000") == 0
    network = load_network(root / "network.json")
    wallets = [p for p in network.partners if p.role == "wallet"]
    acquirers = [p for p in network.partners if p.role == "acquirer"]
    assert len(wallets) == 4 and len(acquirers) == 3
    prefixes = [prefix for w in wallets for prefix in w.code_prefixes]
    assert len(set(prefixes)) == 4  # a fourth wallet routes by its own prefix
    services = read_services(root)
    assert [s.name for s in services][-2:] == [f"{acquirers[-1].party_id} agent", "console"]
    assert len(services) == 2 * 4 + 2 * 3 + 4  # backends, agents, gateway, log, witness, console
    ports = sorted(int(s.listens.rsplit(":", 1)[1]) for s in services if "//127.0.0.1:" in s.listens)
    assert ports == list(range(20000, 20000 + 2 * 4 + 3 + 4))  # all but the acquirer agents' :443
    for service in services:  # relative paths only: the directory can move (and be mounted)
        assert not any(word.startswith("/") for word in service.command), service
        if service.command[:2] == ("blindgate", "agent"):
            _app, config = load_agent(root / service.command[3])  # the shipped agent accepts it
            assert config["format"] == "blindgate-agent/1"
    sdk = json.loads((root / "partners" / acquirers[0].party_id / "backend" / "sdk-client.json").read_text())
    assert sdk["gateway_url"] == "https://127.0.0.2" and "BEGIN" not in sdk["merchant_private_key"]
    assert (
        root / "partners" / acquirers[0].party_id / "backend" / "sdk-client.json"
    ).stat().st_mode & 0o777 == 0o600


def test_init_is_deterministic_in_its_ports_and_refuses_a_foreign_directory(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert _init(tmp_path / name, "--wallets", "1", "--acquirers", "1", "--customers", "1") == 0
    assert [s.command for s in read_services(tmp_path / "a")] == [
        s.command for s in read_services(tmp_path / "b")
    ]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert _init(foreign) == 2 and (foreign / "notes.txt").exists()
    with pytest.raises(SystemExit):
        network_main(["init", str(tmp_path / "c"), "--wallets", "0"])


def test_up_refuses_a_directory_without_services(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert network_main(["up", str(tmp_path)]) == 2
    assert "services.json" in capsys.readouterr().err


@pytest.fixture
def running_network(tmp_path: Path) -> Iterator[Path]:
    host = f"127.0.0.{AGENT_HOST}"
    skip_unless_port_443_free(host)
    root = tmp_path / "net"
    base = _free_port_run(12)
    assert _init(root, "--wallets", "1", "--acquirers", "1", "--customers", "3",
                 "--port-base", str(base), "--agent-host", str(AGENT_HOST)) == 0  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "blindgate_testbed", "network", "up", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = _read_until(process, "stop with", timeout_s=30)
        assert any(f"https://{host}" in line for line in lines), lines
        yield root
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        for service in read_services(root):  # every service it started is gone too
            with pytest.raises(httpx.TransportError):
                httpx.get(service.health_url, timeout=2, verify=False)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _read_until(process: subprocess.Popen[str], marker: str, timeout_s: float) -> list[str]:
    assert process.stdout is not None
    deadline, lines = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"network up exited {process.wait()}: {lines}")
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"network up did not come up: {lines}")


@pytest.mark.slow
def test_an_acquirers_own_sdk_client_pays_through_a_network_that_stays_up(running_network: Path) -> None:
    """The README's example, as written there: the SDK's own client and request classes."""
    from com.alipay.ams.api.default_alipay_client import DefaultAlipayClient
    from com.alipay.ams.api.model.amount import Amount
    from com.alipay.ams.api.model.env import Env
    from com.alipay.ams.api.model.merchant import Merchant
    from com.alipay.ams.api.model.order import Order
    from com.alipay.ams.api.model.store import Store
    from com.alipay.ams.api.request.pay.user_presented_code_payment_request import (
        UserPresentedCodePaymentRequest,
    )

    root = running_network
    acquirer = next(p for p in load_network(root / "network.json").partners if p.role == "acquirer")
    sdk = json.loads((root / "partners" / acquirer.party_id / "backend" / "sdk-client.json").read_text())
    client = DefaultAlipayClient(
        sdk["gateway_url"], sdk["client_id"], sdk["merchant_private_key"], sdk["alipay_public_key"]
    )
    with (root / "population.csv").open() as f:
        payer = next(csv.DictReader(f))
    # The payer's wallet app shows a fresh one-time code (the account's static code proves who asks).
    wallet = next(s for s in read_services(root) if s.name.endswith(" backend") and "HANPAY" in s.name)
    app_pins = ssl.create_default_context(cafile=root / "partners" / "HANPAY" / "backend" / "tls-cert.pem")
    ask = {"paymentCode": payer["payment_code"]}
    shown = httpx.post(wallet.listens + "/app/v1/paymentCode", json=ask, timeout=10, verify=app_pins)
    code = shown.json()["paymentCode"]

    store = Store()
    store.reference_store_id, store.store_name, store.store_mcc = "S1", "Kopi Tiam Bugis", "5812"
    merchant = Merchant()
    merchant.reference_merchant_id, merchant.merchant_mcc, merchant.merchant_name = "M1", "5812", "Kopi Tiam"
    merchant.store = store
    env = Env()
    env.store_terminal_id, env.store_terminal_request_time = "T1", "2026-12-06T10:00:00+08:00"
    order = Order()
    order.reference_order_id, order.order_description = "order-1", "coffee"
    order.order_amount, order.merchant, order.env = Amount("SGD", "10"), merchant, env
    request = UserPresentedCodePaymentRequest("pay-1", order, "SGD", "10", code, sdk["payment_notify_url"])
    answer: dict[str, Any] = json.loads(client.execute(request))  # the SDK checked the agent's signature
    assert answer["result"]["resultStatus"] == "S", answer
    assert answer["customerId"] == payer["customer_id"]  # opened by the acquirer's agent, for the merchant
    # The shipped commands serve their metrics and OpenAPI documents over real HTTP.
    gateway = next(s for s in read_services(root) if s.name == "gateway")
    pinned = ssl.create_default_context(
        cafile=root / "gateway" / "tls-cert.pem"
    )  # as the network file pins it
    metrics = httpx.get(gateway.listens + "/metrics", timeout=5, verify=pinned).text
    assert (
        'route="/ams/api/v1/payments/pay"' in metrics
        and 'blindgate_ledger_postings{event_type="PENDING"}' in metrics
    )
    assert httpx.get(gateway.listens + "/openapi.json", timeout=5, verify=pinned).json() == openapi_document(
        "gateway"
    )
    agent = httpx.get(sdk["gateway_url"] + "/metrics", timeout=5, verify=False).text
    assert 'service="acquirer-agent"' in agent and code not in agent + metrics
