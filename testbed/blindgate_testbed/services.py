"""Start a set of services as real processes, wait until each answers, and always stop them all.

The demo runs the gateway, the agents and the partner backends as separate OS processes
on loopback. :class:`Supervisor` is a context manager: leaving it — normally, on an
exception, on Ctrl-C or on SIGTERM — stops every process it started (SIGTERM to the
process group, then SIGKILL after a grace period), so a failed demo leaves nothing behind.
Each service's stdout and stderr go to a log file in its own folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

import httpx

STOP_GRACE_S = 5.0
HEALTH_POLL_S = 0.1


class ServiceFailed(RuntimeError):
    """A service exited early or did not become healthy in time (its log file says why)."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: Sequence[str]
    log_path: Path
    health_url: str  # GET answers 200 once the service is ready
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


class Supervisor:
    def __init__(self, start_timeout_s: float = 30.0) -> None:
        self.start_timeout_s = start_timeout_s
        self._running: list[tuple[ServiceSpec, subprocess.Popen[bytes]]] = []
        self._previous_sigterm: object = None

    def __enter__(self) -> Supervisor:
        # SIGTERM becomes KeyboardInterrupt, so the same `finally` path stops everything.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()
        signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]

    def start(self, spec: ServiceSpec) -> None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_path.open("ab") as log:
            process = subprocess.Popen(
                list(spec.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                start_new_session=True,  # its own process group: stopped as a whole, spared our Ctrl-C
            )
        self._running.append((spec, process))

    def wait_healthy(self) -> None:
        """Wait until every started service answers its health URL; raise `ServiceFailed` if not."""
        deadline = time.monotonic() + self.start_timeout_s
        with httpx.Client(verify=False, timeout=2.0) as client:
            for spec, process in self._running:
                while True:
                    if process.poll() is not None:
                        raise ServiceFailed(
                            f"{spec.name} exited with {process.returncode}; see {spec.log_path}"
                        )
                    try:
                        if client.get(spec.health_url).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise ServiceFailed(f"{spec.name} did not become healthy; see {spec.log_path}")
                    time.sleep(HEALTH_POLL_S)

    def check_alive(self) -> None:
        for spec, process in self._running:
            if process.poll() is not None:
                raise ServiceFailed(f"{spec.name} exited with {process.returncode}; see {spec.log_path}")

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each running service has used so far; Linux ``/proc`` only."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for spec, process in self._running:
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[spec.name] = round((int(fields[11]) + int(fields[12])) / ticks, 2)  # utime, stime
        return used

    def stop_all(self) -> None:
        """Stop in reverse order of start: SIGTERM to each process group, SIGKILL after a grace."""
        for _, process in reversed(self._running):
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for _, process in reversed(self._running):
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait(timeout=STOP_GRACE_S)
        self._running.clear()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
