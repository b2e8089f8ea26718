"""The one process launcher: exit codes reported, output passed on, every wait bounded, and
the whole process group of every child stopped however the group is left."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from blindgate.processes import ChildFailed, ChildSpec, ProcessGroup


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too: it runs nothing; its parent (stopped) will never reap it.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _wait_for(path: Path) -> str:
    deadline = time.monotonic() + 20
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} never written"
        time.sleep(0.05)
    return path.read_text()


def test_exit_codes_are_reported_and_the_peer_gets_its_grace(tmp_path: Path) -> None:
    with ProcessGroup() as group:
        group.start(ChildSpec("bad-input", _python("raise SystemExit(2)")))
        group.start(ChildSpec("peer", _python("import time; time.sleep(0.5); raise SystemExit(3)")))
        group.start(ChildSpec("fine", _python("pass")))
        codes = group.wait(timeout_s=20, failure_grace_s=10)
    assert codes == {"bad-input": 2, "peer": 3, "fine": 0}


def test_stdout_lines_reach_the_callback_and_a_log_file_gets_both_streams(tmp_path: Path) -> None:
    lines: list[tuple[str, str]] = []
    log = tmp_path / "logs" / "talker.log"
    talk = "import sys; print('one'); print('two'); print('oops', file=sys.stderr)"
    with ProcessGroup(on_line=lambda name, line: lines.append((name, line))) as group:
        group.start(ChildSpec("piped", _python("print('one'); print('two')")))
        group.start(ChildSpec("filed", _python(talk), log_path=log))
        assert group.wait(timeout_s=20) == {"piped": 0, "filed": 0}
    assert lines == [("piped", "one"), ("piped", "two")]
    assert sorted(log.read_text().split()) == ["one", "oops", "two"]


def test_callback_calls_never_overlap_so_two_childrens_lines_never_interleave() -> None:
    # The one-command PET launcher prints each party's --json line from its reader thread;
    # overlapping calls once glued two JSON objects onto one line.
    inside: list[str] = []
    overlaps: list[tuple[str, str]] = []

    def slow_print(name: str, line: str) -> None:
        if inside:
            overlaps.append((inside[0], name))
        inside.append(name)
        time.sleep(0.001)  # a print that writes its text and its newline separately
        inside.pop()

    talk = _python("for i in range(200): print(i, flush=True)")
    with ProcessGroup(on_line=slow_print) as group:
        group.start(ChildSpec("wallet", talk))
        group.start(ChildSpec("network", talk))
        assert group.wait(timeout_s=30) == {"wallet": 0, "network": 0}
    assert overlaps == []


def test_a_wait_past_its_timeout_fails_and_stops_the_child(tmp_path: Path) -> None:
    with pytest.raises(ChildFailed, match="sleeper did not finish"), ProcessGroup() as group:
        pid = group.start(ChildSpec("sleeper", _python("import time; time.sleep(60)")))
        group.wait(timeout_s=0.5)
    assert _gone(pid)


def test_a_child_that_never_becomes_ready_fails_in_bounded_time() -> None:
    started = time.monotonic()
    with pytest.raises(ChildFailed, match="never did not become ready"), ProcessGroup(0.5) as group:
        group.start(ChildSpec("never", _python("import time; time.sleep(60)"), ready=lambda: False))
        group.wait_ready()
    assert time.monotonic() - started < 10


def test_a_failure_stops_what_the_other_children_forked(tmp_path: Path) -> None:
    """A child's own children (uvicorn's workers, a shell's jobs) go with it: the group is
    signalled, not just the process this launcher started."""
    forker = (
        "import subprocess, sys, time\n"
        "grandchild = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(tmp_path / 'pid')!r}, 'w').write(str(grandchild.pid))\n"
        "time.sleep(60)\n"
    )
    with ProcessGroup() as group:
        group.start(ChildSpec("forker", _python(forker)))
        grandchild = int(_wait_for(tmp_path / "pid"))
        group.start(ChildSpec("failing", _python("raise SystemExit(4)")))
        codes = group.wait(timeout_s=20, failure_grace_s=0.2)
    assert codes == {"forker": None, "failing": 4}
    deadline = time.monotonic() + 10
    while not _gone(grandchild):
        assert time.monotonic() < deadline, "the grandchild outlived the group"
        time.sleep(0.05)


def test_two_children_of_one_name_are_refused() -> None:
    with ProcessGroup() as group:
        group.start(ChildSpec("one", _python("pass")))
        with pytest.raises(ValueError, match="already"):
            group.start(ChildSpec("one", _python("pass")))
