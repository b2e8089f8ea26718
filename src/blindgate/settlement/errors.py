"""Settlement's errors, under one root, `SettlementError`. A message names file, row and rule."""

from __future__ import annotations

from blindgate.errors import BlindgateError


class SettlementError(BlindgateError):
    """Settlement's root."""


class BadRecords(SettlementError, ValueError):
    """A records or settlement file that cannot be read: the message names file, row and rule."""
