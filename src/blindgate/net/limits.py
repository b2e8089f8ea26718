"""The bounds a served connection lives within (`blindgate.net.serving` applies them), and their options.

Apart from the serving module so that a command can offer the options, and a configuration
model can check them, without importing the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServeLimits:
    """How long a connection may take at each step, and how many a process holds (see the module)."""

    max_connections: int = 512
    header_timeout_s: float = 10.0
    body_timeout_s: float = 12.0
    keep_alive_s: float = 5.0
    tls_handshake_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_connections <= 1_000_000:
            raise ValueError("max_connections is 1..1000000")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s", "tls_handshake_timeout_s"):
            if not 0 < getattr(self, name) <= 3600:
                raise ValueError(f"{name} is over 0 and at most 3600 seconds")


# One option per limit: (option, `ServeLimits` field, type, what it bounds).
_OPTIONS: tuple[tuple[str, str, type, str], ...] = (
    ("--max-connections", "max_connections", int, "open connections per process"),
    ("--header-timeout", "header_timeout_s", float, "seconds for a request's headers"),
    ("--body-timeout", "body_timeout_s", float, "seconds for a request's body"),
    ("--keep-alive-timeout", "keep_alive_s", float, "seconds idle between requests"),
    ("--tls-handshake-timeout", "tls_handshake_timeout_s", float, "seconds for a TLS handshake"),
)


def add_limit_options(parser: Any) -> None:
    """The `ServeLimits` options on an argparse parser (read back with :func:`limits_from`)."""
    default = ServeLimits()
    group = parser.add_argument_group("connection limits")
    for option, field, kind, what in _OPTIONS:
        value = getattr(default, field)
        group.add_argument(option, dest=field, type=kind, default=value, help=f"{what} (default {value:g})")


def limits_from(args: Any) -> ServeLimits:
    """`ServeLimits` from :func:`add_limit_options`' options; ValueError names a bad one."""
    return ServeLimits(**{field: getattr(args, field) for _, field, _, _ in _OPTIONS})
