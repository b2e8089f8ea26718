"""Exactly-once under SIGKILL, with real processes: several posting workers over one store,
duplicates of the same payments racing on different workers, one killed mid-load and restarted.

No acknowledged payment is lost, none is posted twice, and the whole ledger checks out.
(The gateway-level version, with HTTP workers and notifications, builds on this once the
gateway's pay path exists; see docs/ledger.md.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.ledger import check_ledger
from blindgate.storage.migrate import open_store
from blindgate.storage.schema import entries

ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = 120


def _start(url: str, first: int, last: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash.ledger_worker", url, str(first), str(last)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _acks(output: str) -> set[int]:
    return {int(line.split()[1]) for line in output.splitlines() if line.startswith("ACK ")}


def _run_with_a_kill(url: str) -> None:
    engine = open_store(url)
    # Two workers race over the same payments (duplicates on different workers); a third is killed.
    racing = [_start(url, 0, PAYMENTS), _start(url, 0, PAYMENTS)]
    victim = _start(url, PAYMENTS // 2, PAYMENTS + PAYMENTS // 2)
    acked: set[int] = set()
    assert victim.stdout is not None
    deadline = time.monotonic() + 60
    while len(acked) < 10 and time.monotonic() < deadline:  # kill it under load, mid-stream
        line = victim.stdout.readline()
        if line.startswith("ACK "):
            acked.add(int(line.split()[1]))
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL, "the victim finished before the kill"
    assert acked, "the victim acknowledged nothing before the kill"
    restarted = _start(url, PAYMENTS // 2, PAYMENTS + PAYMENTS // 2)  # a restart replays its whole plan
    for worker in [*racing, restarted]:
        output, _ = worker.communicate(timeout=240)
        assert worker.returncode == 0, output[-500:]
        acked |= _acks(output)
    total = PAYMENTS + PAYMENTS // 2
    assert acked == set(range(total))
    with engine.connect() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                sa.select(entries.c.event_type, sa.func.count()).group_by(entries.c.event_type)
            ).all()
        )
        assert counts == {"PENDING": total, "CAPTURE": total, "REFUND": len(range(0, total, 5))}
        report = check_ledger(conn)
        assert report.ok, report.problems
    engine.dispose()


@pytest.mark.slow
def test_sigkill_under_load_on_sqlite(tmp_path: Path) -> None:
    _run_with_a_kill(f"sqlite:///{tmp_path / 'gateway.db'}")


@pytest.mark.slow
@pytest.mark.postgres
def test_sigkill_under_load_on_postgresql(pg_schema_url: str) -> None:
    _run_with_a_kill(pg_schema_url)
