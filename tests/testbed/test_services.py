"""A partner backend as a real process under the group: it starts, answers, and is stopped."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from blindgate.net import free_port
from blindgate.processes import ChildFailed, ProcessGroup
from blindgate_testbed.partner_server import write_backend_config, write_rsa_private_key, write_rsa_public_key
from blindgate_testbed.partners.signed_http import PartnerKeys, signed_request_headers
from blindgate_testbed.partners.wallet import PAY_PATH, WalletBook
from blindgate_testbed.population import PAYMENT_CODE_DIGITS, generate_population
from blindgate_testbed.services import ServiceSpec


def test_wallet_backend_process(tmp_path: Path) -> None:
    population = generate_population(seed=1, customers_per_wallet=3)
    wallet = population.wallets[0]
    backend_key, agent_key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)
    )
    write_rsa_private_key(backend_key, tmp_path / "backend.pem")
    write_rsa_public_key(agent_key.public_key(), tmp_path / "agent.pub.pem")
    assert (tmp_path / "backend.pem").stat().st_mode & 0o777 == 0o600
    book = WalletBook.create(tmp_path / "wallet.db", wallet)
    customer = wallet.customers[0]
    code = book.issue_code(customer.customer_id, wallet.payment_code_prefix, PAYMENT_CODE_DIGITS)
    book.close()
    port = free_port()
    write_backend_config(
        tmp_path / "backend.json", kind="wallet", host="127.0.0.1", port=port, db=tmp_path / "wallet.db",
        client_id="C", private_key=tmp_path / "backend.pem", peer_public_key=tmp_path / "agent.pub.pem",
        wallet_id=wallet.wallet_id, currency=wallet.currency,
    )  # fmt: skip
    spec = ServiceSpec(
        "wallet",
        [sys.executable, "-m", "blindgate_testbed.partner_server", str(tmp_path / "backend.json")],
        tmp_path / "backend.log",
        f"http://127.0.0.1:{port}/health",
    )
    caller = PartnerKeys("C", agent_key, backend_key.public_key())

    def body(request_id: str) -> str:
        method = {"paymentMethodType": "CONNECT_WALLET", "paymentMethodId": code}
        amount = {"currency": wallet.currency, "value": "10"}
        return json.dumps({"paymentRequestId": request_id, "paymentAmount": amount, "paymentMethod": method})

    def pay(request_id: str) -> dict[str, Any]:
        answer = httpx.post(
            f"http://127.0.0.1:{port}{PAY_PATH}",
            content=body(request_id),
            headers=signed_request_headers(PAY_PATH, body(request_id), caller),
        )
        return dict(answer.json())

    with ProcessGroup(ready_timeout_s=20) as group:
        group.start(spec.child())
        group.wait_ready()
        assert pay("P1")["customerId"] == customer.customer_id
        assert pay("P1")["customerId"] == customer.customer_id  # the same payment again
        assert pay("P2")["result"]["resultCode"] == "INVALID_CODE"  # a one-time code, spent
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text  # served as every service's
        assert any(
            line.startswith("blindgate_http_requests_total{") and f'route="{PAY_PATH}"' in line
            and 'service="wallet-backend"' in line for line in metrics.splitlines()
        )  # fmt: skip
    with pytest.raises(httpx.ConnectError):  # stopped on leaving the group
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    lines = [
        json.loads(line)
        for line in (tmp_path / "backend.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert [line["route"] for line in lines if line.get("logger") == "blindgate.requests"].count(
        PAY_PATH
    ) == 3


def test_a_service_that_dies_is_reported(tmp_path: Path) -> None:
    spec = ServiceSpec(
        "broken", [sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "log", "http://127.0.0.1:9/"
    )
    with ProcessGroup(ready_timeout_s=10) as group:
        group.start(spec.child())
        with pytest.raises(ChildFailed, match="exited with 3"):
            group.wait_ready()


def test_sigterm_stops_every_child(tmp_path: Path) -> None:
    """The demo process, killed with SIGTERM, still stops what it started."""
    import os
    import signal
    import subprocess
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from blindgate.processes import ProcessGroup\n"
        "from blindgate_testbed.services import ServiceSpec\n"
        f"log = Path({str(tmp_path)!r})\n"
        "with ProcessGroup() as s:\n"
        "    sleeper = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        "    s.start(ServiceSpec('child', sleeper, log / 'c.log', '').child())\n"
        "    (log / 'pid').write_text(str(s.pid('child')))\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (tmp_path / "pid").exists():
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    child = int((tmp_path / "pid").read_text())
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=20)
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)
