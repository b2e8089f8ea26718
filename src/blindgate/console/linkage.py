"""The linkage page's figures: `blindgate audit linkage` over the gateway's store, on request.

The measure (`blindgate.audit.linkage.measure_store`, the command's own function) needs the
ground truth the operator lacks — which payer made each payment (``--payers``, the CSV the
command reads) — and the network file's business day (``--network``), the pseudonyms' scope.
Given both, an operator or a regulator may run it from the page (a POST: it is work, not a
view); the figures are those the command prints for the same store and files.

Its cost is bounded before it starts: it reads every row keyed by a payment and compares every
pair of one payer's payments, so a store over `MAX_PAYMENTS` payments, or ground truth over
`MAX_PAIRS` pairs to compare, is refused with a message naming the command to run instead; one
run at a time (a second request while one runs is told so), on a worker thread, never on the
event loop. The last run's figures stay in memory, with when it ran; the saved runs of the
command (``reports/linkage*.json``, `blindgate audit linkage --out`) are shown beside them.

The page shows counts only: the payers file holds payer ids, and none of them reaches the page.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from blindgate.audit.linkage import (
    LinkageInputError,
    measure_store,
    pairs_to_compare,
    read_cutoff,
    read_payers,
)

# A few seconds each on the shared 2-core development machine at load 6 (a synthetic store of
# 8 columns): 20,000 payments of 10 per payer in 1.8 s; 2,000,000 pairs (one payer's 2,000
# payments) in 11.6 s, so a quarter of that.
MAX_PAYMENTS = 20_000
MAX_PAIRS = 500_000
MAX_SAVED_BYTES = 64 * 1024
FIGURES = (
    "payments",
    "payers",
    "pairs_in_scope",
    "linked_in_scope",
    "pairs_across_scopes",
    "linked_across_scopes",
    "largest_linked_set",
)


@dataclass(frozen=True)
class LinkageRun:
    name: str  # "computed at <time>" or the saved report's file name
    figures: dict[str, Any]  # the command's JSON: FIGURES and ``linked_by``


class LinkageRefused(Exception):
    """The measure was not run: the message says why and what to do (never a value)."""


class LinkageRunner:
    def __init__(
        self, engine: sa.Engine, network: Path | None, payers: Path | None, reports: Path | None
    ) -> None:
        self.engine, self.network, self.payers, self.reports = engine, network, payers, reports
        self.last: LinkageRun | None = None
        self._running = threading.Lock()

    @property
    def can_compute(self) -> bool:
        return self.network is not None and self.payers is not None

    def compute(self) -> LinkageRun:
        """Run the measure now (blocking: call it on a worker thread); raises `LinkageRefused`."""
        if self.network is None or self.payers is None:
            raise LinkageRefused("the console was started without --network and --payers")
        if not self._running.acquire(blocking=False):
            raise LinkageRefused("a linkage run is under way: try again when it ends")
        try:
            try:
                payer_of, cutoff = read_payers(self.payers), read_cutoff(self.network)
            except LinkageInputError as exc:
                raise LinkageRefused(str(exc)) from None
            self._check_cost(payer_of)
            report = measure_store(self.engine, cutoff, payer_of)
        finally:
            self._running.release()
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        self.last = LinkageRun(f"computed at {stamp}", report.to_json())
        return self.last

    def _check_cost(self, payer_of: dict[str, str]) -> None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("gw_payments"):
                raise LinkageRefused("the store holds no payments table yet")
            payments = conn.execute(sa.text("SELECT count(*) FROM gw_payments")).scalar_one()
        pairs = pairs_to_compare(payer_of)
        if payments > MAX_PAYMENTS or pairs > MAX_PAIRS:
            raise LinkageRefused(
                f"too large to measure here ({payments} payments, {pairs} pairs; the console measures up to "
                f"{MAX_PAYMENTS} and {MAX_PAIRS}): run blindgate audit linkage --out reports/linkage.json"
            )

    def saved(self) -> list[LinkageRun]:
        """``linkage*.json`` reports in the reports folder that hold the command's figures."""
        if self.reports is None or not self.reports.is_dir():
            return []
        found = []
        for path in sorted(self.reports.glob("linkage*.json")):
            try:
                if path.stat().st_size > MAX_SAVED_BYTES:
                    continue
                document = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(document, dict) and all(type(document.get(k)) is int for k in FIGURES):
                linked_by = document.get("linked_by")
                document["linked_by"] = linked_by if isinstance(linked_by, dict) else {}
                found.append(LinkageRun(path.name, document))
        return found
