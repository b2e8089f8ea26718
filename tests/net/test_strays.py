"""A PET server outlasts strays: garbage, an HTTP probe, a wrong certificate or an idle socket
that reaches its port first is refused, and the pinned peer still gets through."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from blindgate.net import Identity
from blindgate.net.errors import ChannelError
from blindgate.net.tls import Listener, connect


def _garbage(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"\x00\xffnot tls at all" * 10)
        time.sleep(0.2)


def _http_probe(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.2)


def _idle(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port)):
        time.sleep(1.0)  # says nothing; the listener moves on after its handshake bound


def _stranger(port: int, server: Identity) -> None:
    """A client whose certificate the server did not pin (TLS 1.3: it may learn so only later)."""
    stranger = Identity.generate("stranger")
    try:
        with connect(f"127.0.0.1:{port}", stranger, server.cert_pem, timeout=2) as channel:
            channel.send(b"let me in")
    except ChannelError:
        pass


@pytest.mark.parametrize("stray", ["garbage", "http", "idle", "wrong-certificate"])
def test_a_stray_before_the_peer_does_not_end_the_run(stray: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("blindgate.net.tls.HANDSHAKE_TIMEOUT_S", 0.5)
    server, client = Identity.generate("server"), Identity.generate("client")
    strays: dict[str, Callable[[int], None]] = {
        "garbage": _garbage,
        "http": _http_probe,
        "idle": _idle,
        "wrong-certificate": lambda port: _stranger(port, server),
    }
    with Listener("127.0.0.1:0", server, client.cert_pem, timeout=10) as listener:
        first = threading.Thread(target=strays[stray], args=(listener.port,))
        first.start()
        time.sleep(0.1)  # the stray is first in the queue

        def peer() -> None:
            with connect(f"127.0.0.1:{listener.port}", client, server.cert_pem, timeout=10) as channel:
                channel.send(b"hello")

        second = threading.Thread(target=peer)
        second.start()
        with listener.accept(accept_timeout=10) as channel:
            assert channel.recv() == b"hello"
        first.join(5)
        second.join(5)
