"""Idle and slow connections against a real `blindgate gateway` and `blindgate agent` (issue 19).

The attacker opens far more connections than the server's cap (and than its descriptor limit,
set low here as a small machine's would be): some send nothing, some send headers a byte at a
time, some send a body a byte at a time. While they are held, signed requests must complete in
time, the server must hold no more descriptors than its cap allows, and every held connection
must be closed within its timeout. Without `blindgate.net.serving` uvicorn holds them all: the
descriptors run out, the signed requests time out, and nothing is ever closed.
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from blindgate.api.models import INQUIRY_PATH
from blindgate.api.signed import encode, request_headers
from blindgate.crypto.keystore import KeyStore
from blindgate.crypto.signatures import ED25519
from blindgate.net import free_port
from blindgate.net.serving import REPEATS_PER_WINDOW, RepeatLimiter
from blindgate_testbed.network import write_tls_certificate
from tests.gateway.harness import SDK_CLIENT, LocalNetwork, build

HOST = "127.0.0.1"
CAP = 32
DESCRIPTORS = 256  # the server's descriptor limit: the attack below opens more connections than this
HEADER_S, BODY_S, IDLE_S, HANDSHAKE_S = 2.0, 2.0, 1.0, 2.0
SLACK_S = 4.0  # a loaded test machine's scheduling delay on top of a timeout
LIMIT_OPTIONS = {
    "max_connections": CAP,
    "header_timeout_s": HEADER_S,
    "body_timeout_s": BODY_S,
    "keep_alive_s": IDLE_S,
    "tls_handshake_timeout_s": HANDSHAKE_S,
}


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


@contextmanager
def running(argv: list[str], health: str, log: Path, verify: Any = True) -> Iterator[int]:
    """The command, started with few descriptors, once it answers ``health``; yields its pid."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "blindgate.cli", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_few_descriptors,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(health, timeout=1, verify=verify).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the service did not become healthy"
            time.sleep(0.1)
        yield process.pid
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)


def gateway_argv(root: Path, port: int, *tls: str) -> list[str]:
    return [
        "gateway",
        "--network", str(root / "network.json"),
        "--keys", str(root / "gateway-keys"),
        "--db", f"sqlite:///{root / 'served.db'}",
        "--port", str(port),
        "--max-connections", str(CAP),
        "--header-timeout", str(HEADER_S),
        "--body-timeout", str(BODY_S),
        "--keep-alive-timeout", str(IDLE_S),
        "--tls-handshake-timeout", str(HANDSHAKE_S),
        *tls,
    ]  # fmt: skip


def agent_argv(net: LocalNetwork, port: int) -> list[str]:
    root = net.root
    (root / "merchant.pub.pem").write_bytes(
        net.merchant_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    agent_file = {
        "format": "blindgate-agent/1",
        "network": "network.json",
        "keys": "acquirer-agent-keys",
        "backend": {"client_id": SDK_CLIENT, "public_key": "merchant.pub.pem"},
        "state": "agent-state",
        "host": HOST,
        "port": port,
        "connections": LIMIT_OPTIONS,
    }
    (root / "agent.json").write_text(json.dumps(agent_file))
    return ["agent", "--config", str(root / "agent.json")]


class Attack:
    """Connections held open as an attacker would, and when the server closed each."""

    def __init__(self, port: int, idle: int, slow_headers: int, slow_bodies: int) -> None:
        self.opened: dict[socket.socket, float] = {}
        self.closed: dict[socket.socket, float] = {}
        self.trickling: list[socket.socket] = []
        for kind, count in (("idle", idle), ("headers", slow_headers), ("body", slow_bodies)):
            for _ in range(count):
                sock = socket.create_connection((HOST, port), timeout=5)
                sock.setblocking(False)
                self.opened[sock] = time.monotonic()
                if kind == "headers":
                    sock.send(b"POST /ams/api/v1/payments/inquiryPayment HTTP/1.1\r\nHost: x\r\n")
                    self.trickling.append(sock)
                elif kind == "body":
                    head = b"POST /ams/api/v1/payments/inquiryPayment HTTP/1.1\r\nHost: x\r\n"
                    sock.send(head + b"Content-Type: application/json\r\nContent-Length: 4000\r\n\r\n{")
                    self.trickling.append(sock)
        self.last_trickle = time.monotonic()

    def watch(self, seconds: float) -> None:
        """Trickle a byte on each slow connection every half second; note closes as they come."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and len(self.closed) < len(self.opened):
            open_now = [s for s in self.opened if s not in self.closed]
            readable, _, _ = select.select(open_now, [], [], 0.1)
            for sock in readable:
                self._read(sock)
            if time.monotonic() - self.last_trickle >= 0.5:
                self.last_trickle = time.monotonic()
                for sock in self.trickling:
                    if sock not in self.closed:
                        try:
                            sock.send(b"X-a: b\r\n"[:1])
                        except OSError:
                            self.closed[sock] = time.monotonic()

    def _read(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.closed[sock] = time.monotonic()

    def held_longest(self) -> float:
        return max(self.closed[s] - self.opened[s] for s in self.opened)

    def close(self) -> None:
        for sock in self.opened:
            sock.close()


def descriptors(pid: int) -> int:
    """Descriptors the server process holds (its worker is the process itself: one worker)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def sockets(pid: int) -> int:
    """Sockets the server process holds (its store's files, opened as it needs them, aside)."""
    fds = f"/proc/{pid}/fd"
    links = []
    for fd in os.listdir(fds):
        try:
            links.append(os.readlink(f"{fds}/{fd}"))
        except FileNotFoundError:  # closed while listed
            continue
    return sum(link.startswith("socket:") for link in links)


def settles_within_cap(attack: Attack, pid: int, baseline: int) -> None:
    """The server's descriptors come down to its cap within a second or two of the burst (asyncio
    accepts a burst before the cap's check runs on each; on a loaded machine that takes a moment)."""
    deadline = time.monotonic() + 3.0
    while descriptors(pid) > baseline + CAP + 2:
        assert time.monotonic() < deadline, f"{descriptors(pid) - baseline} connections held, past the cap"
        attack.watch(0.1)


def open_connections_metric(url: str) -> int:
    """``blindgate_open_connections`` as a scrape of the service's /metrics reads it."""
    with httpx.Client(timeout=3) as http:
        text = http.get(url + "/metrics").text
    found = re.search(r"^blindgate_open_connections\{[^}]*\} ([0-9.]+)$", text, re.MULTILINE)
    assert found is not None, "no blindgate_open_connections gauge"
    return int(float(found[1]))


def signed_inquiry(net: LocalNetwork, url: str, number: int, **client: Any) -> dict[str, Any]:
    """A signed inquiry by the acquirer's agent for a payment that does not exist: the gateway
    checks the signature, looks it up and signs its answer."""
    key, version = KeyStore(net.root / "acquirer-agent-keys").signing_key(ED25519)
    payload = encode({"paymentRequestId": f"held-{number}"})
    headers = request_headers(INQUIRY_PATH, payload, "ACQ_SG_AGENT", key, version)
    with httpx.Client(timeout=3, **client) as http:
        response = http.post(url + INQUIRY_PATH, content=payload, headers=headers)
    assert response.status_code == 200 and response.headers["signature"].startswith("algorithm=ED25519")
    answer: dict[str, Any] = response.json()
    return answer


def sdk_inquiry(net: LocalNetwork, url: str, number: int) -> dict[str, Any]:
    """A signed SDK call to the acquirer's agent that it answers itself (a personal field where
    an inquiry has none: PARAM_ILLEGAL, signed), after checking the SDK's RSA signature."""
    payload = encode({"paymentRequestId": f"held-{number}", "buyerEmail": "someone@example.invalid"})
    headers = request_headers(INQUIRY_PATH, payload, SDK_CLIENT, net.merchant_key, 1)
    with httpx.Client(timeout=3) as http:
        response = http.post(url + INQUIRY_PATH, content=payload, headers=headers)
    assert response.status_code == 200 and response.headers["signature"].startswith("algorithm=RSA256")
    answer: dict[str, Any] = response.json()
    return answer


def hold_and_serve(net: LocalNetwork, pid: int, port: int, call: Any) -> Attack:
    """Hold 3 x 100 connections (beyond the cap and the descriptor limit), make signed calls while
    they are held, then wait for the server to close every one of them."""
    baseline, baseline_sockets = descriptors(pid), sockets(pid)
    attack = Attack(port, idle=100, slow_headers=100, slow_bodies=100)
    try:
        attack.watch(0.3)
        settles_within_cap(attack, pid, baseline)
        held = open_connections_metric(f"http://{HOST}:{port}")
        assert 0 < held <= CAP + 1, held  # the held ones count (the scrape's own too), within the cap
        for number in range(10):
            started = time.monotonic()
            answer = call(net, f"http://{HOST}:{port}", number)
            assert answer["result"]["resultStatus"] == "F", answer  # answered, and refused as it should be
            assert time.monotonic() - started < 3.0, "a signed request waited on held connections"
        attack.watch(max(HEADER_S, BODY_S) + SLACK_S)
        assert len(attack.closed) == len(attack.opened), (
            f"{len(attack.opened) - len(attack.closed)} held connections still open after their timeout"
        )
        assert attack.held_longest() <= max(HEADER_S, BODY_S) + SLACK_S
        assert sockets(pid) <= baseline_sockets + 2
    finally:
        attack.close()
    return attack


def test_gateway_outlasts_idle_and_slow_connections(tmp_path: Path) -> None:
    net = build(tmp_path)
    port = free_port()
    log = tmp_path / "gateway.out"
    with running(gateway_argv(tmp_path, port), f"http://{HOST}:{port}/health", log) as pid:
        hold_and_serve(net, pid, port, signed_inquiry)
        # A kept-alive connection that idles after its answer is closed after the keep-alive timeout.
        with socket.create_connection((HOST, port), timeout=IDLE_S + SLACK_S) as kept:
            kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            started, received = time.monotonic(), b""
            while chunk := kept.recv(65536):
                received += chunk
            assert received.startswith(b"HTTP/1.1 200") and time.monotonic() - started <= IDLE_S + SLACK_S
    assert_limited(log)


def assert_limited(log: Path) -> None:
    """No message but the per-request line is written more than the limiter lets it be (five a
    minute), though the attack above repeats several 100 times; none names a client address."""
    lines = log.read_text().splitlines()
    assert not any(f"{HOST}:" in line for line in lines), "a log line names a client address"
    messages = Counter(message for message in map(_message, lines) if message != "request")
    assert messages and max(messages.values()) <= REPEATS_PER_WINDOW, messages


def _message(line: str) -> str:
    """A JSON log line's message; a plain line (uvicorn's own, on stderr) is its own message."""
    try:
        return str(json.loads(line)["message"])
    except (ValueError, KeyError, TypeError):
        return line


def test_agent_outlasts_idle_and_slow_connections(tmp_path: Path) -> None:
    net = build(tmp_path)
    port = free_port()
    log = tmp_path / "agent.out"
    with running(agent_argv(net, port), f"http://{HOST}:{port}/health", log) as pid:
        hold_and_serve(net, pid, port, sdk_inquiry)
    assert_limited(log)


def test_tls_handshakes_that_never_finish_are_closed(tmp_path: Path) -> None:
    """Connections to the TLS port that never start the handshake count against the cap from
    their accept (more than the descriptor limit are opened), a signed request over TLS is answered
    while they are held, and each is closed within the handshake timeout; connections that finish
    the handshake and then idle are closed within the header timeout."""
    net = build(tmp_path)
    key, cert = write_tls_certificate(HOST, tmp_path / "tls")
    trust = ssl.create_default_context(cafile=str(cert))
    port = free_port()
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    log = tmp_path / "gateway.out"
    with running(gateway_argv(tmp_path, port, *tls), f"https://{HOST}:{port}/health", log, trust) as pid:
        baseline = descriptors(pid)
        silent = Attack(port, idle=300, slow_headers=0, slow_bodies=0)  # past the descriptor limit
        settles_within_cap(silent, pid, baseline)
        shaken = []
        for _ in range(10):
            raw = socket.create_connection((HOST, port), timeout=5)
            shaken.append(trust.wrap_socket(raw, server_hostname=HOST))
        try:
            started = time.monotonic()
            answer = signed_inquiry(net, f"https://{HOST}:{port}", 0, verify=trust)
            assert answer["result"]["resultStatus"] == "F" and time.monotonic() - started < 3.0
            silent.watch(HANDSHAKE_S + SLACK_S)
            stuck = len(silent.opened) - len(silent.closed)
            assert stuck == 0, f"{stuck} connections stuck before their handshake stayed open"
            for _ in range(20):  # a request sent right behind the handshake, in the same flight
                with trust.wrap_socket(
                    socket.create_connection((HOST, port), timeout=5), server_hostname=HOST
                ) as fast:
                    fast.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    assert fast.recv(12) == b"HTTP/1.1 200"
            for sock in shaken:
                sock.settimeout(HEADER_S + SLACK_S)
                assert sock.recv(1) == b"", "a TLS connection with no request stayed open"
            assert descriptors(pid) <= baseline + 2
        finally:
            silent.close()
            for sock in shaken:
                sock.close()


def test_repeated_log_lines_are_limited_and_counted() -> None:
    import logging

    now = [0.0]
    limiter = RepeatLimiter(per_window=3, window_s=60, clock=lambda: now[0])

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, message, None, None)

    passed = [limiter.filter(record("socket.accept() out of system resource")) for _ in range(1000)]
    assert sum(passed) == 3
    assert limiter.filter(record("another message"))  # each message has its own allowance
    now[0] = 61.0
    summary = record("socket.accept() out of system resource")
    assert limiter.filter(summary) and "997 more like this" in str(summary.msg)
