"""Which store a command acts on: ``--db URL``, else ``$BLINDGATE_DB``, else the demo's gateway.

``blindgate demo`` runs in ``./demo-run/`` and names its gateway's store as ``gateway_db`` in
``demo-run/report.json`` (``blindgate_testbed.network.gateway_db_url``: ``demo-run/gateway/gateway.db``);
without a report, the store found at ``demo-run/gateway/gateway.db`` or ``demo-run/gateway.db``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from blindgate.storage.errors import NoStore

DEMO_DIR = Path("demo-run")


def resolve_db_url(given: str | None, demo_dir: Path = DEMO_DIR) -> str:
    """The store URL a command should use (see module docstring)."""
    if given:
        return given
    if os.environ.get("BLINDGATE_DB"):
        return os.environ["BLINDGATE_DB"]
    report = demo_dir / "report.json"
    if report.is_file():
        named = json.loads(report.read_text()).get("gateway_db")
        if isinstance(named, str) and named:
            return named
    for database in (demo_dir / "gateway" / "gateway.db", demo_dir / "gateway.db"):
        if database.is_file():
            return f"sqlite:///{database}"
    raise NoStore(f"no --db, no BLINDGATE_DB and no demo store in {demo_dir} (run `blindgate demo` first)")
