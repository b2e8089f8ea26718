"""The audit commands' errors: one root under `blindgate.errors.BlindgateError`."""

from __future__ import annotations

from blindgate.errors import BlindgateError


class AuditError(BlindgateError):
    """An audit (the privacy scan, the linkage measure) could not run on its inputs."""


class LinkageInputError(AuditError, ValueError):
    """The payers file or the network file cannot be read (the message names which, never a value)."""
