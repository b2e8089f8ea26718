"""A free TCP port for a process about to be started, which will listen on it itself."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port that no socket on ``host`` held a moment ago, below the kernel's ephemeral range.

    Racy by nature (another process may take it before the child binds it): use it only to
    tell a child process where to listen. Where the listener is in this process, bind port
    0 instead (``Listener("HOST:0", ...)`` reports the port it got). It picks below the
    ephemeral range because every outgoing connection on the machine takes a port from that
    range: a port handed out there is soon reused by some client, and the child's bind fails.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(10_000, low) if low > 10_000 else 0
        if port in _given:  # handed to another child of this process, which may not listen yet
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            found = int(probe.getsockname()[1])
        _given.add(found)
        return found
    raise OSError("no free port below the ephemeral range")


_given: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
