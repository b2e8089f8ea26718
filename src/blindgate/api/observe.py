"""The payment path's services observed (`blindgate.net.observe`) with the contract's result codes.

An answer's ``resultCode`` becomes a metric label only if `blindgate.api.results` knows it
(anything else is ``other``), so no value a caller or a partner chose can reach a label.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client.registry import Collector
from starlette.types import ASGIApp

from blindgate.api.results import RESULTS
from blindgate.net.observe import Observed


def observed(
    app: ASGIApp,
    service: str,
    routes: Iterable[str],
    openapi: dict[str, Any] | None = None,
    collectors: Iterable[Collector] = (),
) -> Observed:
    """`blindgate.net.observe.Observed`, result codes labelled as the contract knows them."""
    return Observed(app, service, routes, openapi, collectors, RESULTS)


__all__ = ["Observed", "observed"]
