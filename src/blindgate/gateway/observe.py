"""The gateway's own gauges for `blindgate.api.observe`, read from its store at each scrape.

- ``blindgate_outbox_depth``: payment-result notifications not yet acknowledged by the
  acquirer's agent (the outbox, `blindgate.gateway.notifier`);
- ``blindgate_ledger_postings{event_type}``: ledger entries by event type (PENDING, CAPTURE,
  VOID, REFUND, CANCEL, SETTLEMENT): postings so far, wherever the gateway workers wrote them.

Labels are event types only. A store that cannot be read answers no sample (the scrape still
succeeds with the other metrics) rather than an error.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette

from blindgate.api.observe import Observed, observed
from blindgate.api.openapi import SURFACE_PATHS, openapi_document
from blindgate.gateway.app import engine_of
from blindgate.storage.schema import entries, notifications

log = logging.getLogger("blindgate.gateway")


class StoreGauges(Collector):
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                depth = conn.execute(
                    sa.select(sa.func.count()).where(notifications.c.delivered_at.is_(None))
                ).scalar_one()
                postings = conn.execute(
                    sa.select(entries.c.event_type, sa.func.count()).group_by(entries.c.event_type)
                ).all()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("metrics: cannot read the store: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily("blindgate_outbox_depth", "notifications not yet acknowledged", value=depth)
        family = GaugeMetricFamily(
            "blindgate_ledger_postings", "ledger entries by event type", labels=["event_type"]
        )
        for event_type, count in postings:
            family.add_metric([str(event_type)], count)
        yield family


def observed_gateway(app: Starlette) -> Observed:
    """The gateway as `blindgate gateway` serves it: metrics, request logs, its OpenAPI document."""
    return observed(
        app,
        "gateway",
        SURFACE_PATHS["gateway"],
        openapi_document("gateway"),
        [StoreGauges(engine_of(app))],
    )
