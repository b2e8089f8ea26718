"""The demo-run directory: where every party of a demo network keeps its files.

::

    demo-run/
      population.csv            ground truth: every personal value the wallets hold
      network.json              the gateway's network description (partners, keys, endpoints)
      report.json               the summary: outcomes, amounts, throughput, privacy check
      services.json             every process, in start order (`blindgate-testbed network up`)
      gateway/                  EVERY file the gateway writes (database, logs, notifications, keys)
      partners/<PARTNER_ID>/
        agent/                  the partner's blindgate agent: its key store, config, log
        backend/                the partner's own system: its database, RSA key, log

Only ``gateway/`` is scanned by the privacy check: partners may hold their own customers'
data; the gateway may not.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

_MARKERS = ("population.csv", "report.json", "network.json", "services.json")


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def population_csv(self) -> Path:
        return self.root / "population.csv"

    @property
    def network_file(self) -> Path:
        return self.root / "network.json"

    @property
    def report_file(self) -> Path:
        return self.root / "report.json"

    @property
    def gateway(self) -> Path:
        return self.root / "gateway"

    def agent(self, partner_id: str) -> Path:
        return self.root / "partners" / partner_id / "agent"

    def backend(self, partner_id: str) -> Path:
        return self.root / "partners" / partner_id / "backend"

    def fresh(self) -> RunLayout:
        """Empty the run directory (only if it is a previous run's or empty) and make the folders."""
        if self.root.exists() and any(self.root.iterdir()):
            if not any((self.root / marker).exists() for marker in _MARKERS):
                raise FileExistsError(f"{self.root} exists and is not a demo run; choose another --dir")
            shutil.rmtree(self.root)
        self.gateway.mkdir(parents=True, exist_ok=True)
        return self
