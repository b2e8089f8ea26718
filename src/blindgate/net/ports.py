"""A free TCP port for a process about to be started, which will listen on it itself."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port that no socket on ``host`` held a moment ago.

    Racy by nature (another process may take it before the child binds it): use it only to
    tell a child process where to listen. Where the listener is in this process, bind port
    0 instead (``Listener("HOST:0", ...)`` reports the port it got).
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
