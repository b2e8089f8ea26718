"""The console's errors: one root under `blindgate.errors.BlindgateError`."""

from __future__ import annotations

from blindgate.errors import BlindgateError


class ConsoleError(BlindgateError):
    """The console cannot start or serve as configured."""


class UsersFileError(ConsoleError, ValueError):
    """The users file is missing, malformed or would hold a bad entry (the message says which part)."""
