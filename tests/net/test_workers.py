"""`serve` with several workers spreads new connections over them (``SO_REUSEPORT``).

uvicorn's workers share one listening socket, and the worker that wakes first accepts every
connection waiting: clients that keep their connections alive then all land on one worker.
Here each worker listens on a socket of its own and the kernel spreads connections over them.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blindgate.net import free_port

HOST = "127.0.0.1"
WORKERS = 2
CONNECTIONS = 24  # all on one worker by chance: 2 in 2^24
TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def served_by_workers(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """`serve` with `WORKERS` workers of `whoami`, once every worker listens."""
    code = (
        "from blindgate.net.serving import serve; "
        f"serve('tests.net.whoami:app', {HOST!r}, {port}, workers={WORKERS})"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(listeners(port)) < WORKERS:  # uvicorn's shared socket: only ever one
            assert process.poll() is None, "the server ended"
            assert time.monotonic() < deadline, "the workers do not each listen on a socket of their own"
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT_S)


def listeners(port: int) -> list[str]:
    """The listening TCP sockets on ``port`` (inodes from /proc/net/tcp: state 0A is LISTEN)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return [
        fields[9]
        for fields in (row.split() for row in rows)
        if fields[3] == "0A" and fields[1].endswith(f":{port:04X}")
    ]


def served_by(connection: socket.socket) -> int:
    """The process id that answers a request on ``connection``."""
    connection.sendall(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
    answer = b""
    while True:
        head, _, body = answer.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if length is not None and len(body) >= length:
            return int(body[:length])
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        answer += chunk


def test_each_worker_listens_and_connections_are_spread_over_them() -> None:
    port = free_port()
    with served_by_workers(port):
        assert len(listeners(port)) == WORKERS  # one per worker, none in the parent
        # All connected before any is served: one shared socket's queue would go whole to
        # whichever worker woke first.
        connections = [socket.create_connection((HOST, port), timeout=TIMEOUT_S) for _ in range(CONNECTIONS)]
        try:
            workers = {served_by(connection) for connection in connections}
        finally:
            for connection in connections:
                connection.close()
    assert len(workers) == WORKERS
