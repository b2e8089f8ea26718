"""The official SDK connects to port 443 of its URL's host: tests that point it at a local agent
need that port free on their own loopback address, or skip saying why."""

from __future__ import annotations

import socket

import pytest


def skip_unless_port_443_free(*hosts: str) -> None:
    """Skip the test unless a server could listen on ``host:443`` for every host. Probed as the
    servers bind (SO_REUSEADDR), so an earlier run's connections in TIME-WAIT do not count."""
    for host in hosts:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, 443))
            except OSError as exc:
                pytest.skip(f"cannot bind {host}:443 ({exc.strerror}); the SDK only connects to port 443")
