"""`serve` in a process of its own: workers that share the connections, and bounded headers.

uvicorn's workers share one listening socket, and the worker that wakes first accepts every
connection waiting: clients that keep their connections alive then all land on one worker.
Here each worker listens on a socket of its own and the kernel spreads connections over them,
with Nagle's algorithm off on what they accept. Request headers are bounded
(`net.serving.MAX_HEADER_BYTES`): uvicorn's httptools protocol would collect them without end.
Requests sent back to back on one connection are each answered.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blindgate.net import free_port
from blindgate.net.limits import ServeLimits
from blindgate.net.serving import BoundedLoop, _port_for_workers

HOST = "127.0.0.1"
WORKERS = 2
CONNECTIONS = 24  # all on one worker by chance: 2 in 2^24
TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def served(port: int, workers: int = WORKERS) -> Iterator[subprocess.Popen[bytes]]:
    """`serve` with ``workers`` workers of `whoami`, once every worker listens."""
    code = (
        "from blindgate.net.serving import serve; "
        f"serve('tests.net.whoami:app', {HOST!r}, {port}, workers={workers})"
    )
    process = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(listeners(port)) < workers:  # uvicorn's shared socket: only ever one
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


def served_by(connection: socket.socket, headers: bytes = b"") -> int:
    """The process id that answers a request on ``connection``."""
    connection.sendall(b"GET / HTTP/1.1\r\nhost: test\r\n" + headers + b"\r\n")
    return read_answers(connection, 1)[0]


def read_answers(connection: socket.socket, count: int) -> list[int]:
    """The bodies (process ids) of the next ``count`` answers on ``connection``."""
    answers: list[int] = []
    pending = b""
    while len(answers) < count:
        head, found, rest = pending.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            None,
        )
        if found and length is not None and len(rest) >= length:
            answers.append(int(rest[:length]))
            pending = rest[length:]
            continue
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        pending += chunk
    return answers


def test_each_worker_listens_and_connections_are_spread_over_them() -> None:
    port = free_port()
    with served(port):
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


def test_headers_past_the_bound_are_refused_and_within_it_served() -> None:
    port = free_port()
    filler = b"x-filler: " + b"a" * 100 + b"\r\n"
    with served(port, workers=1):
        with socket.create_connection((HOST, port), timeout=TIMEOUT_S) as connection:
            assert served_by(connection, filler * 80) > 0  # 8.7 KiB of headers
        with socket.create_connection((HOST, port), timeout=TIMEOUT_S) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nhost: test\r\n")
            for _ in range(200):  # 22 KiB in reads of 1.1 KiB, the headers never ending
                try:
                    connection.sendall(filler * 10)
                except OSError:  # closed by the server: what this test expects
                    break
                time.sleep(0.001)
            answer = connection.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")


def test_a_worker_s_connections_have_nagle_off() -> None:
    """asyncio sets TCP_NODELAY only on sockets made with IPPROTO_TCP; a worker's own listener
    must be one, or each answer written in two parts waits for the client's delayed ACK."""
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one(shared: socket.socket) -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=shared)
        reader, writer = await asyncio.open_connection(HOST, shared.getsockname()[1])
        await reader.read()  # the probe closes at once
        writer.close()
        server.close()

    loop = BoundedLoop(ServeLimits(), own_listener=True)
    shared = _port_for_workers(HOST, 0)
    try:
        loop.run_until_complete(asyncio.wait_for(accept_one(shared), TIMEOUT_S))
    finally:
        shared.close()
        loop.close()
    assert seen and seen[0] != 0


def test_requests_sent_back_to_back_are_all_answered() -> None:
    """HTTP/1.1 pipelining: each request waits for the one before it, then runs."""
    port = free_port()
    with served(port, workers=1), socket.create_connection((HOST, port), timeout=TIMEOUT_S) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n" * 3)
        assert len(set(read_answers(connection, 3))) == 1  # three answers, from the one worker
        assert served_by(connection) > 0  # and the connection still serves
