"""The wire contract's errors: one root, `ContractError`, under `BlindgateError`."""

from __future__ import annotations

from blindgate.errors import BlindgateError


class ContractError(BlindgateError):
    """The root of the wire contract's errors."""
