"""A network's processes as an operator runs them: ``services.json`` and where each listens.

Each `Service` is a shipped command (``blindgate ...`` or ``blindgate-testbed ...``) whose
paths are relative to the run directory, so one list serves the demo, `network up` (which
starts them from the directory with this interpreter) and the compose file (which runs them in
containers with the directory mounted). `Ports` gives the loopback ports: free ones now, or
consecutive ones from a base (the same counts give the same files).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from blindgate.net import free_port
from blindgate_testbed.services import ServiceSpec

SERVICES_FILE = "services.json"

# The shipped commands a service runs, and the module each is (`python -m` of this interpreter).
_MODULES = {"blindgate": "blindgate", "blindgate-testbed": "blindgate_testbed"}


class Ports:
    """Free ports picked now (``base`` None: the demo, tests), or consecutive ports from
    ``base`` in the order asked (`network init`)."""

    def __init__(self, base: int | None = None) -> None:
        self._next = base

    def take(self) -> int:
        if self._next is None:
            return free_port()
        port, self._next = self._next, self._next + 1
        return port


@dataclass(frozen=True)
class Service:
    name: str
    command: tuple[str, ...]
    log: str  # relative to the run directory
    health_url: str  # GET answers 200 once it is ready
    listens: str  # where its clients reach it

    def spec(self, root: Path) -> ServiceSpec:
        """The process to start, in ``root``, with this interpreter's copy of the command."""
        argv = [sys.executable, "-m", _MODULES[self.command[0]], *self.command[1:]]
        return ServiceSpec(self.name, argv, root / self.log, self.health_url, cwd=root)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "command": list(self.command)}

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> Service:
        return cls(
            str(entry["name"]),
            tuple(str(word) for word in entry["command"]),
            str(entry["log"]),
            str(entry["health_url"]),
            str(entry["listens"]),
        )


def write_services(root: Path, services: list[Service]) -> Path:
    path = root / SERVICES_FILE
    path.write_text(json.dumps([service.to_json() for service in services], indent=2) + "\n")
    return path


def read_services(root: Path) -> list[Service]:
    """The run directory's services, in start order; ValueError if the file is not one."""
    try:
        entries = json.loads((root / SERVICES_FILE).read_text())
        services = [Service.from_json(entry) for entry in entries]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        problem = type(exc).__name__
        raise ValueError(f"{root / SERVICES_FILE} is missing or not a services file ({problem})") from None
    if not services or any(s.command[0] not in _MODULES for s in services):
        raise ValueError(f"{root / SERVICES_FILE} names no service, or a command not blindgate(-testbed)")
    return services


def relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
