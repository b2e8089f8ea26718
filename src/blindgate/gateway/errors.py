"""The gateway's own errors, under one root, `GatewayError`.

A business refusal toward a partner is not one of these: it is an `blindgate.api.results.ApiError`
(the wire contract's), answered with its AMS code. These are the gateway's configuration
refusals and its internal signals.
"""

from __future__ import annotations

from blindgate.errors import BlindgateError


class GatewayError(BlindgateError):
    """The gateway's root."""


class GatewayConfigError(GatewayError, ValueError):
    """The gateway cannot start with this configuration (a rate file, a key store): the message says why."""


class ClaimLost(GatewayError):
    """Internal: another scan claimed the order code first (the losing scan reads the winner's)."""
