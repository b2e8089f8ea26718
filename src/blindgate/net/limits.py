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


def add_limit_options(parser: Any) -> None:
    """The `ServeLimits` options on an argparse parser (read back with :func:`limits_from`)."""
    default = ServeLimits()
    group = parser.add_argument_group("connection limits")
    group.add_argument(
        "--max-connections",
        type=int,
        default=default.max_connections,
        help=f"open connections per process (default {default.max_connections})",
    )
    group.add_argument(
        "--header-timeout",
        type=float,
        default=default.header_timeout_s,
        help=f"seconds for a request's headers (default {default.header_timeout_s:g})",
    )
    group.add_argument(
        "--body-timeout",
        type=float,
        default=default.body_timeout_s,
        help=f"seconds for a request's body (default {default.body_timeout_s:g})",
    )
    group.add_argument(
        "--keep-alive-timeout",
        type=float,
        default=default.keep_alive_s,
        help=f"seconds idle between requests (default {default.keep_alive_s:g})",
    )
    group.add_argument(
        "--tls-handshake-timeout",
        type=float,
        default=default.tls_handshake_timeout_s,
        help=f"seconds for a TLS handshake (default {default.tls_handshake_timeout_s:g})",
    )


def limits_from(args: Any) -> ServeLimits:
    """`ServeLimits` from :func:`add_limit_options`' options; ValueError names a bad one."""
    return ServeLimits(
        max_connections=args.max_connections,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        keep_alive_s=args.keep_alive_timeout,
        tls_handshake_timeout_s=args.tls_handshake_timeout,
    )
