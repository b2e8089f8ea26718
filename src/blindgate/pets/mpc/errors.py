"""Errors of the MPC engine. Messages name the value's column or the cause, never a value."""

from __future__ import annotations

from blindgate.errors import BlindgateError


class MpcError(BlindgateError):
    """The two-party computation cannot go on (a peer's failure is a `ChannelError`)."""


class FixedPointOverflow(MpcError):
    """A value is outside the range the fixed-point encoding can carry safely."""
