from __future__ import annotations

import threading

import numpy as np
import pytest

from blindgate.net import (
    ChannelError,
    ChannelTimeout,
    FrameTooLarge,
    Identity,
    Listener,
    MalformedFrame,
    PeerClosed,
    ProtocolMismatch,
    SocketChannel,
    connect,
    free_port,
    memory_pair,
)


def test_memory_roundtrip_and_counters() -> None:
    a, b = memory_pair(timeout=2)
    a.send(b"hello")
    assert b.recv() == b"hello"
    assert a.stats.bytes_sent == 5 + 4 and b.stats.bytes_received == 9
    array = np.arange(12, dtype=np.uint64).reshape(3, 4)
    a.send_array(array)
    np.testing.assert_array_equal(b.recv_array(np.uint64, (3, 4)), array)


def test_exchange_both_directions_at_once() -> None:
    a, b = memory_pair(timeout=5, depth=1)
    big = bytes(1 << 20)
    result: list[bytes] = []
    peer = threading.Thread(target=lambda: result.append(b.exchange(b"x" * 10)))
    peer.start()
    assert a.exchange(big) == b"x" * 10
    peer.join()
    assert result == [big]


def test_timeout_and_close_are_errors_not_hangs() -> None:
    a, b = memory_pair(timeout=0.2)
    with pytest.raises(ChannelTimeout):
        a.recv()
    b.close()
    with pytest.raises(PeerClosed):
        a.recv()


def test_frame_limits_and_array_checks() -> None:
    a, b = memory_pair(timeout=1, max_frame=64)
    with pytest.raises(FrameTooLarge):
        a.send(bytes(65))
    a.send(b"not an array")
    with pytest.raises(MalformedFrame):
        b.recv_array()
    a.send_array(np.zeros(1, dtype=np.uint8))
    with pytest.raises(MalformedFrame):
        b.recv_array(np.uint64)


def test_hello_rejects_other_version() -> None:
    a, b = memory_pair(timeout=2)
    errors: list[Exception] = []

    def peer() -> None:
        try:
            b.hello("psi-ecdh", 2)
        except ProtocolMismatch as exc:
            errors.append(exc)

    thread = threading.Thread(target=peer)
    thread.start()
    with pytest.raises(ProtocolMismatch, match="version 2"):
        a.hello("psi-ecdh", 1)
    thread.join()
    assert len(errors) == 1


def _serve(listener: Listener, out: list[object]) -> None:
    try:
        with listener.accept() as channel:
            channel.send(channel.recv()[::-1])
    except ChannelError as exc:
        out.append(exc)


def test_tls_with_pinned_certificates() -> None:
    server_id, client_id = Identity.generate("server"), Identity.generate("client")
    with Listener("127.0.0.1:0", server_id, client_id.cert_pem, timeout=5) as listener:
        errors: list[object] = []
        thread = threading.Thread(target=_serve, args=(listener, errors))
        thread.start()
        with connect(f"127.0.0.1:{listener.port}", client_id, server_id.cert_pem, timeout=5) as ch:
            ch.send(b"abc")
            assert ch.recv() == b"cba"
        thread.join()
    assert errors == []


def test_tls_refuses_an_unpinned_peer() -> None:
    server_id, client_id, stranger = (Identity.generate(n) for n in ("s", "c", "x"))
    with Listener("127.0.0.1:0", server_id, client_id.cert_pem, timeout=5) as listener:
        errors: list[object] = []
        thread = threading.Thread(target=_serve, args=(listener, errors))
        thread.start()
        with pytest.raises(ChannelError):
            ch = connect(f"127.0.0.1:{listener.port}", stranger, server_id.cert_pem, timeout=5)
            ch.send(b"abc")
            ch.recv()
        thread.join()
    assert len(errors) == 1


def test_tls_exchange_is_full_duplex_for_large_frames() -> None:
    # Both sides send 8 MiB before reading: a half-duplex channel would deadlock here.
    server_id, client_id = Identity.generate("server"), Identity.generate("client")
    ours, theirs = bytes(range(256)) * 32768, b"\x07" * (8 << 20)
    with Listener("127.0.0.1:0", server_id, client_id.cert_pem, timeout=10) as listener:
        got: list[bytes] = []

        def peer() -> None:
            with listener.accept() as channel:
                for _ in range(3):
                    got.append(channel.exchange(theirs))
                channel.send(b"after")

        thread = threading.Thread(target=peer)
        thread.start()
        with connect(f"127.0.0.1:{listener.port}", client_id, server_id.cert_pem, timeout=10) as ch:
            for _ in range(3):
                assert ch.exchange(ours) == theirs
            assert ch.recv() == b"after"
            assert ch.stats.frames_sent == 3 and ch.stats.frames_received == 4
        thread.join()
    assert got == [ours] * 3


def test_exchange_with_a_silent_peer_times_out() -> None:
    server_id, client_id = Identity.generate("server"), Identity.generate("client")
    with Listener("127.0.0.1:0", server_id, client_id.cert_pem, timeout=5) as listener:
        done = threading.Event()

        def silent_peer() -> None:
            with listener.accept():
                done.wait(5)

        thread = threading.Thread(target=silent_peer)
        thread.start()
        with (
            connect(f"127.0.0.1:{listener.port}", client_id, server_id.cert_pem, timeout=0.5) as ch,
            pytest.raises(ChannelTimeout),
        ):
            ch.exchange(b"hello")
        done.set()
        thread.join()


def test_free_port_can_be_listened_on() -> None:
    port = free_port()
    identity = Identity.generate("s")
    with Listener(f"127.0.0.1:{port}", identity, identity.cert_pem, timeout=1) as listener:
        assert listener.port == port


class _RecordingSocket:
    """A stream socket stand-in that records each write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def settimeout(self, _: float) -> None:
        pass

    def sendall(self, data: bytes | memoryview) -> None:
        self.writes.append(bytes(data))


def test_a_small_frame_goes_out_in_one_write_with_its_header() -> None:
    # A peer blocked on a frame must wake once for it: a header written apart from its body
    # costs a request/answer session (single-row scoring) two wake-ups a frame under load.
    sock = _RecordingSocket()
    channel = SocketChannel(sock)  # type: ignore[arg-type]
    channel.send(b"customer-42")
    assert sock.writes == [b"\x00\x00\x00\x0bcustomer-42"]
    big = bytes(200_000)
    channel.send(big)  # a large frame is not copied to join its header
    assert sock.writes[1:] == [b"\x00\x03\x0d\x40", big]
