"""Start child processes, pass on or file their output, wait with a timeout, always stop them.

The one way blindgate runs other processes: the PET commands' one-command modes
(`blindgate train` and `blindgate predict` run one `blindgate` process per party), the MPC
engine's multi-process runs (:func:`blindgate.pets.mpc.processes.run_processes`) and the
testbed's services (the demo, `blindgate-testbed network up`).

:class:`ProcessGroup` is a context manager. Each child starts in its own session, so it and
everything it forks form one process group that is stopped as a whole, and a Ctrl-C at the
terminal reaches only this process, which then stops them. Leaving the context — normally,
on an exception, on Ctrl-C or on SIGTERM (turned into `KeyboardInterrupt` while the group is
open, in the main thread) — sends SIGTERM to every child's group, in reverse order of
start, and SIGKILL to any still there after a grace period, so a failed run leaves nothing
behind. A child's stdout and stderr go to its log file, or, without one, its stdout lines
go to the group's ``on_line`` callback (a reader thread per child; calls are serialised, so
the callback needs no lock of its own and lines never interleave) and its stderr to ours.

Standard library only (subprocess, signal); imports nothing of blindgate's but the error
root, so every package may use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from blindgate.errors import EXIT_PEER, BlindgateError

STOP_GRACE_S = 5.0
POLL_S = 0.1
READER_JOIN_S = 5.0


class ChildFailed(BlindgateError):
    """A child exited early, did not become ready, or did not finish in time."""

    exit_status = EXIT_PEER


@dataclass(frozen=True)
class ChildSpec:
    """One child: its argv, where its output goes, and how to tell it is ready (optional)."""

    name: str
    argv: Sequence[str]
    log_path: Path | None = None  # stdout and stderr appended here; None: stdout to on_line
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to this process's environment
    ready: Callable[[], bool] | None = None  # True once the child serves; None: ready at start


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[str]
    reader: threading.Thread | None = None


class ProcessGroup:
    """Children started together and stopped together (see the module docstring)."""

    def __init__(
        self, ready_timeout_s: float = 30.0, on_line: Callable[[str, str], None] | None = None
    ) -> None:
        self.ready_timeout_s = ready_timeout_s
        self._on_line = on_line
        self._line_lock = threading.Lock()
        self._children: list[_Child] = []
        self._previous_sigterm: object = None

    def __enter__(self) -> ProcessGroup:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM becomes KeyboardInterrupt, so the same path stops everything.
            self._previous_sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop_all()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)  # type: ignore[arg-type]
                self._previous_sigterm = None

    def start(self, spec: ChildSpec) -> int:
        """Start ``spec``'s process; returns its pid (also its process group's id)."""
        if any(child.spec.name == spec.name for child in self._children):
            raise ValueError(f"a child named {spec.name!r} is already in this group")
        piped = spec.log_path is None and self._on_line is not None
        with contextlib.ExitStack() as files:
            output: int | object = subprocess.PIPE if piped else None
            if spec.log_path is not None:
                spec.log_path.parent.mkdir(parents=True, exist_ok=True)
                output = files.enter_context(spec.log_path.open("a"))
            process = subprocess.Popen(
                list(spec.argv),
                stdout=output,  # type: ignore[arg-type]
                stderr=subprocess.STDOUT if spec.log_path is not None else None,
                stdin=subprocess.DEVNULL,
                cwd=spec.cwd,
                env={**os.environ, **spec.env},
                text=True,
                start_new_session=True,  # its own process group: stopped as a whole, spared our Ctrl-C
            )
        child = _Child(spec, process)
        if piped:
            child.reader = threading.Thread(target=self._pump, args=(child,), daemon=True)
            child.reader.start()
        self._children.append(child)
        return process.pid

    def pid(self, name: str) -> int:
        return self._child(name).process.pid

    def names(self) -> list[str]:
        return [child.spec.name for child in self._children]

    def wait_ready(self) -> None:
        """Wait until every child's ``ready`` probe answers True; raise `ChildFailed` if one
        exits first or ``ready_timeout_s`` passes."""
        deadline = time.monotonic() + self.ready_timeout_s
        for child in self._children:
            while child.spec.ready is not None:
                self._raise_if_exited(child)
                if child.spec.ready():
                    break
                if time.monotonic() > deadline:
                    raise ChildFailed(f"{child.spec.name} did not become ready{_see(child.spec)}")
                time.sleep(POLL_S)

    def check_alive(self) -> None:
        """Raise `ChildFailed` if any child has exited (for children meant to run until stopped)."""
        for child in self._children:
            self._raise_if_exited(child)

    def wait(self, timeout_s: float | None, failure_grace_s: float = STOP_GRACE_S) -> dict[str, int | None]:
        """Wait until every child exits; return each one's exit code.

        When one fails (exit code not 0), the others get ``failure_grace_s`` to exit on their own
        (a peer usually fails a moment later, for the failed one's sake), then the wait returns:
        a child still running then has the code None, and leaving the group stops it. Raises
        `ChildFailed` after ``timeout_s``; None only where every child bounds its own waits (the
        PET parties: every message has a timeout).
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            codes = self.exit_codes()
            if any(code not in (None, 0) for code in codes.values()):
                settle = time.monotonic() + failure_grace_s
                while None in codes.values() and time.monotonic() < settle:
                    time.sleep(POLL_S)
                    codes = self.exit_codes()
                break
            if None not in codes.values():
                break
            if deadline is not None and time.monotonic() > deadline:
                running = [name for name, code in codes.items() if code is None]
                raise ChildFailed(f"{', '.join(running)} did not finish in {timeout_s:g} s")
            time.sleep(POLL_S)
        for child in self._children:  # every line read before the caller looks at the results
            if child.reader is not None and child.process.poll() is not None:
                child.reader.join(READER_JOIN_S)
        return codes

    def exit_codes(self) -> dict[str, int | None]:
        return {child.spec.name: child.process.poll() for child in self._children}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each running child has used so far; Linux ``/proc`` only."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for child in self._children:
            try:
                stat = Path(f"/proc/{child.process.pid}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            used[child.spec.name] = round((int(fields[11]) + int(fields[12])) / ticks, 2)  # utime, stime
        return used

    def stop_all(self) -> None:
        """Stop in reverse order of start: SIGTERM to each process group, SIGKILL after a grace."""
        for child in reversed(self._children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in reversed(self._children):
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child.process, signal.SIGKILL)
                child.process.wait(timeout=STOP_GRACE_S)
            if child.reader is not None:
                child.reader.join(READER_JOIN_S)
        self._children.clear()

    def _child(self, name: str) -> _Child:
        for child in self._children:
            if child.spec.name == name:
                return child
        raise KeyError(name)

    def _raise_if_exited(self, child: _Child) -> None:
        code = child.process.poll()
        if code is not None:
            raise ChildFailed(f"{child.spec.name} exited with {code}{_see(child.spec)}")

    def _pump(self, child: _Child) -> None:
        assert child.process.stdout is not None and self._on_line is not None
        for line in child.process.stdout:
            with self._line_lock:
                self._on_line(child.spec.name, line.rstrip("\n"))


def _see(spec: ChildSpec) -> str:
    return f"; see {spec.log_path}" if spec.log_path is not None else ""


def _signal_group(process: subprocess.Popen[str], sig: signal.Signals) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


__all__ = ["ChildFailed", "ChildSpec", "ProcessGroup"]
