"""What a PET command tells its user while it runs: stages with totals and time left, notes, a summary.

Three modes, one per process: ``bar`` (default: a rich progress bar on stderr, one per
party, with the stage's name, done/total and time left; plain lines when stderr is not a
terminal), ``json`` (``--json``: one JSON object per line on stdout — ``progress``,
``note`` and a closing ``summary`` — for scripts and for the one-command launcher, which
draws every party's bar in one place so lines never interleave), and ``quiet``
(``--quiet``: errors only). Nothing here ever carries a data value.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

MODES = ("bar", "json", "quiet")


class Feedback:
    def __init__(self, command: str, role: str, mode: str = "bar") -> None:
        assert mode in MODES
        self.command, self.role, self.mode = command, role, mode
        self._progress: Any = None
        self._task: Any = None
        self._stage: str | None = None
        self._started = time.monotonic()

    @classmethod
    def from_args(cls, command: str, role: str, quiet: bool, as_json: bool) -> Feedback:
        return cls(command, role, "json" if as_json else "quiet" if quiet else "bar")

    def stage(self, name: str, done: int, total: int) -> None:
        if self.mode == "json":
            self._emit({"event": "progress", "stage": name, "done": done, "total": total})
        elif self.mode == "bar":
            self._bar(name, done, total)

    def note(self, text: str) -> None:
        """Something the user should know (rows left out, columns excluded): never a value."""
        if self.mode == "json":
            self._emit({"event": "note", "text": text})
        elif self.mode == "bar":
            self._print(f"{self.role}: {text}")

    def summary(self, fields: dict[str, Any]) -> None:
        """The closing summary: one JSON line (``--json``), or a few readable lines."""
        self.close()
        if self.mode == "json":
            self._emit({"event": "summary", **fields})
        elif self.mode == "bar":
            width = max(map(len, fields), default=0)
            lines = [f"{self.command} ({self.role}) done in {time.monotonic() - self._started:.1f} s"]
            lines += [f"  {key.ljust(width)}  {_text(value)}" for key, value in fields.items()]
            print("\n".join(lines), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def _emit(self, event: dict[str, Any]) -> None:
        print(json.dumps({"command": self.command, "role": self.role, **event}), flush=True)

    def _print(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def _bar(self, name: str, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            if done == total or (name != self._stage and done == 0):
                print(f"{self.role}: {name} {done}/{total}", file=sys.stderr, flush=True)
            self._stage = name
            return
        if self._progress is None:
            self._progress = new_progress()
            self._progress.start()
        if name != self._stage:
            if self._task is not None:
                self._progress.remove_task(self._task)
            self._task = self._progress.add_task(f"{self.role}: {name}", total=total)
            self._stage = name
        self._progress.update(self._task, completed=done, total=total)


def new_progress() -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    return Progress(*columns, transient=True)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


class PartyBars:
    """The launcher's view of several parties' ``--json`` progress: one bar each, drawn in one place."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = new_progress() if enabled and sys.stderr.isatty() else None
        self._tasks: dict[str, Any] = {}
        self.summaries: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        if self._progress is not None:
            self._progress.start()

    def feed(self, party: str, line: str) -> None:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("event")
        if kind == "summary":
            self.summaries[party] = {k: v for k, v in event.items() if k not in {"event", "command", "role"}}
        elif kind == "note":
            self.notes.append(f"{party}: {event.get('text')}")
            if self._progress is not None:
                self._progress.console.print(self.notes[-1])
            elif self.enabled:
                print(self.notes[-1], file=sys.stderr, flush=True)
        elif kind == "progress" and self._progress is not None:
            description = f"{party}: {event.get('stage')}"
            if party not in self._tasks:
                self._tasks[party] = self._progress.add_task(description, total=event.get("total"))
            self._progress.update(
                self._tasks[party],
                description=description,
                completed=event.get("done", 0),
                total=event.get("total"),
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
