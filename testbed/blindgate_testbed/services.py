"""The testbed's services as children of the one process launcher (`blindgate.processes`).

The demo runs the gateway, the agents and the partner backends as separate OS processes
on loopback. A :class:`ServiceSpec` says how to start one, where its log goes and which URL
answers 200 once it serves; :meth:`ServiceSpec.child` makes it a `ChildSpec` whose readiness
probe GETs that URL, for a `ProcessGroup` that starts them, waits until each answers, and
always stops them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from blindgate.processes import ChildSpec

PROBE_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: Sequence[str]
    log_path: Path
    health_url: str  # GET answers 200 once the service is ready
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)

    def child(self) -> ChildSpec:
        return ChildSpec(self.name, self.argv, self.log_path, self.cwd, self.env, self._healthy)

    def _healthy(self) -> bool:
        try:
            return httpx.get(self.health_url, verify=False, timeout=PROBE_TIMEOUT_S).status_code == 200
        except httpx.HTTPError:
            return False
