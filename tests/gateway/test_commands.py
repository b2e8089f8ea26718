"""`blindgate gateway` serves for real (one and two worker processes)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from blindgate.net import free_port
from tests.gateway.harness import build


@pytest.mark.parametrize("workers", [1, 2])
def test_gateway_command_serves(tmp_path: Path, workers: int) -> None:
    build(tmp_path)  # writes network.json and the gateway's key store
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "blindgate.cli",
        "gateway",
        "--network",
        str(tmp_path / "network.json"),
        "--keys",
        str(tmp_path / "gateway-keys"),
        "--db",
        f"sqlite:///{tmp_path / 'served.db'}",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--log",
        str(tmp_path / "gateway.log"),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else b""
            assert time.monotonic() < deadline, "the gateway did not become healthy"
            time.sleep(0.1)
        answer = httpx.post(f"http://127.0.0.1:{port}/ams/api/v1/payments/pay", content=b"{}", timeout=5)
        assert answer.status_code == 200
        assert answer.json()["result"]["resultCode"] == "KEY_NOT_FOUND"
        assert answer.headers["signature"].startswith("algorithm=ED25519")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
