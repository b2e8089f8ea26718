"""`blindgate-testbed demo --serve`: after its traffic the network stays up with its console, which
shows the run's settlement batches, each partner's reconciliation and the privacy check, until
SIGTERM stops every process."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.sdk_port import skip_unless_port_443_free

pytestmark = pytest.mark.slow
FIRST_HOST = 40  # 127.0.0.40 and .41: no other test's


def test_demo_serve_keeps_the_network_and_its_console_up(tmp_path: Path) -> None:
    skip_unless_port_443_free(f"127.0.0.{FIRST_HOST}", f"127.0.0.{FIRST_HOST + 1}")
    run = tmp_path / "demo-run"
    process = subprocess.Popen(
        [sys.executable, "-m", "blindgate_testbed", "demo", "--dir", str(run), "--payments", "40",
         "--customers", "6", "--workers", "4", "--agent-host", str(FIRST_HOST), "--quiet", "--serve"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        address = _console_address(process, timeout_s=240)
        passwords = json.loads((run / "console" / "passwords.json").read_text())
        with httpx.Client(base_url=address, timeout=10) as client:
            signed_in = client.post("/login", data={"name": "operator", "password": passwords["operator"]})
            assert signed_in.status_code == 303
            days = client.get("/days").text
            assert 'class="batch"' in days and "reconcile-MERLIONACQ.csv" in days and "breaks: 0" in days
            assert re.search(r'data-key="found">0<', client.get("/privacy").text)
            assert "demo.json" in client.get("/reports").text
            assert 'service="console"' in client.get("/metrics").text  # every service has metrics
            log = client.get("/transparency").text  # every bundle, the operator's too, cosigned
            assert log.count('class="entry"') == 6 and re.search(r'class="cosignatures">[1-9]', log)
            assert re.search(r'id="head-cosignatures">([1-9]), \1 verified', log)  # under the witness's key
            measured = client.post("/linkage")  # on request, from audit/payers.csv: the run's own figures
            figures = re.findall(r'data-key="(\w+)">(\d+)<', measured.text)
            assert measured.status_code == 200 and "<h2>linkage.json</h2>" in measured.text
            assert len(figures) == 14 and figures[:7] == figures[7:]  # computed now == the demo's saved run
            assert ("linked_across_scopes", "0") in figures
            partner = client.post("/login", data={"name": "hanpay", "password": passwords["hanpay"]})
            assert partner.status_code == 303
            own = client.get("/transparency").text
            assert own.count('class="entry"') == 1 and "SIAMPAY" not in own
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        with pytest.raises(httpx.TransportError):
            httpx.get(address + "/health", timeout=2)
    finally:
        if process.poll() is None:  # a failed check: SIGTERM stops the demo's whole network
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _console_address(process: subprocess.Popen[str], timeout_s: float) -> str:
    assert process.stdout is not None
    deadline, lines = time.monotonic() + timeout_s, []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"the demo exited {process.wait()}: {lines[-20:]}")
        lines.append(line)
        found = re.match(r"console: (http://\S+) ", line)
        if found:
            return found[1]
    raise AssertionError(f"no console address: {lines[-20:]}")
