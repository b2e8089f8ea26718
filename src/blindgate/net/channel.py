"""Framed channels between two parties: one interface, over TCP+TLS or in memory.

A frame is a 4-byte big-endian length and that many bytes. Every wait has a timeout,
every frame a size bound, so a peer that drops, stalls or sends garbage makes the
other side stop with a :class:`ChannelError`, never hang. Byte and frame counters let
protocols report what they cost.

``exchange`` is the one way for both parties to swap a frame in the same step (each
calls it; neither must speak first): over a socket it sends and receives at once, from
one thread, since two parties that both send a large frame before reading would
otherwise deadlock on full socket buffers, and OpenSSL must not be read and written from
two threads at once; in memory the bounded queue holds the frame sent, so sending and
then receiving cannot deadlock. ``hello`` is one exchange too.
"""

from __future__ import annotations

import contextlib
import json
import queue
import select
import socket
import ssl
import struct
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from blindgate.net.errors import (
    ChannelError,
    ChannelTimeout,
    FrameTooLarge,
    MalformedFrame,
    PeerClosed,
    ProtocolMismatch,
)

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_FRAME = 256 * 1024 * 1024
_HEADER = struct.Struct(">I")
_ARRAY_HEADER = struct.Struct(">H")
_COALESCE_BYTES = 64 * 1024  # frames up to this size go out with their header in one write


@dataclass
class ChannelStats:
    bytes_sent: int = 0
    bytes_received: int = 0
    frames_sent: int = 0
    frames_received: int = 0

    def snapshot(self) -> ChannelStats:
        return ChannelStats(**vars(self))

    def since(self, earlier: ChannelStats) -> ChannelStats:
        return ChannelStats(**{k: v - getattr(earlier, k) for k, v in vars(self).items()})


class Channel(ABC):
    """A reliable, ordered, framed, two-party channel."""

    def __init__(self, timeout: float, max_frame: int) -> None:
        assert timeout > 0 and max_frame > 0
        self.timeout = timeout
        self.max_frame = max_frame
        self.stats = ChannelStats()

    @abstractmethod
    def _send_frame(self, payload: bytes | memoryview) -> None: ...

    @abstractmethod
    def _recv_frame(self) -> bytes: ...

    @abstractmethod
    def close(self) -> None: ...

    def send(self, payload: bytes | bytearray | memoryview) -> None:
        view = memoryview(payload).cast("B")
        if view.nbytes > self.max_frame:
            raise FrameTooLarge(f"refusing to send a {view.nbytes}-byte frame (limit {self.max_frame})")
        self._send_frame(view)
        self.stats.bytes_sent += view.nbytes + _HEADER.size
        self.stats.frames_sent += 1

    def recv(self) -> bytes:
        payload = self._recv_frame()
        self.stats.bytes_received += len(payload) + _HEADER.size
        self.stats.frames_received += 1
        return payload

    def exchange(self, payload: bytes | bytearray | memoryview) -> bytes:
        """Send ``payload`` and receive the peer's frame, the peer doing the same at once.

        This default sends, then receives: right for a channel whose ``send`` never waits
        for the peer to read (in memory, the queue holds the frame). A channel whose send
        can block on the peer (a socket) overrides it to move both directions together.
        """
        self.send(payload)
        return self.recv()

    # Typed helpers. Arrays travel as a small JSON header (dtype, shape) and raw bytes.

    def send_json(self, obj: Any) -> None:
        self.send(json.dumps(obj, separators=(",", ":")).encode())

    def recv_json(self) -> Any:
        raw = self.recv()
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedFrame("expected a JSON frame") from exc

    def send_array(self, array: np.ndarray) -> None:
        self.send(encode_array(array))

    def recv_array(
        self, dtype: np.dtype | type | None = None, shape: tuple[int, ...] | None = None
    ) -> np.ndarray:
        return decode_array(self.recv(), dtype, shape)

    def hello(self, protocol: str, version: int, **params: Any) -> dict[str, Any]:
        """Check that both ends run the same protocol and version; return the peer's params."""
        mine = {"protocol": protocol, "version": version, "params": params}
        try:
            theirs = json.loads(self.exchange(json.dumps(mine).encode()))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedFrame("expected a hello frame") from exc
        if not isinstance(theirs, dict):
            raise MalformedFrame("expected a hello frame")
        if theirs.get("protocol") != protocol or theirs.get("version") != version:
            raise ProtocolMismatch(
                f"peer speaks {theirs.get('protocol')!r} version {theirs.get('version')!r}, "
                f"we speak {protocol!r} version {version}"
            )
        peer_params = theirs.get("params")
        if not isinstance(peer_params, dict):
            raise MalformedFrame("hello frame without params")
        return peer_params

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def encode_array(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array)
    header = json.dumps({"dtype": array.dtype.str, "shape": list(array.shape)}).encode()
    return _ARRAY_HEADER.pack(len(header)) + header + array.tobytes()


def decode_array(
    frame: bytes, dtype: np.dtype | type | None = None, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """Parse an array frame; when ``dtype``/``shape`` are given the frame must match them."""
    try:
        (size,) = _ARRAY_HEADER.unpack_from(frame)
        header = json.loads(frame[_ARRAY_HEADER.size : _ARRAY_HEADER.size + size])
        got_dtype = np.dtype(header["dtype"])
        got_shape = tuple(int(n) for n in header["shape"])
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise MalformedFrame("expected an array frame") from exc
    if got_dtype.hasobject:
        raise MalformedFrame("object arrays are not accepted")
    if dtype is not None and got_dtype != np.dtype(dtype):
        raise MalformedFrame(f"expected dtype {np.dtype(dtype)}, peer sent {got_dtype}")
    if shape is not None and got_shape != tuple(shape):
        raise MalformedFrame(f"expected shape {tuple(shape)}, peer sent {got_shape}")
    body = memoryview(frame)[_ARRAY_HEADER.size + size :]
    if any(n < 0 for n in got_shape) or body.nbytes != got_dtype.itemsize * int(np.prod(got_shape)):
        raise MalformedFrame("array frame length does not match its header")
    return np.frombuffer(body, dtype=got_dtype).reshape(got_shape)


_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


class _FrameReader:
    """Accumulates one length-prefixed frame from however many reads it takes."""

    def __init__(self, max_frame: int) -> None:
        self._max_frame = max_frame
        self._header = bytearray(_HEADER.size)
        self._body: bytearray | None = None
        self._got = 0

    @property
    def done(self) -> bool:
        return self._body is not None and self._got == len(self._body)

    def window(self) -> memoryview:
        target = self._header if self._body is None else self._body
        return memoryview(target)[self._got :]

    def advance(self, count: int) -> None:
        self._got += count
        if self._body is None and self._got == _HEADER.size:
            (size,) = _HEADER.unpack(self._header)
            if size > self._max_frame:
                raise FrameTooLarge(f"peer announced a {size}-byte frame (limit {self._max_frame})")
            self._body, self._got = bytearray(size), 0

    def frame(self) -> bytes:
        assert self._body is not None and self.done
        return bytes(self._body)


class SocketChannel(Channel):
    """A channel over a connected (usually TLS-wrapped) stream socket."""

    def __init__(
        self, sock: socket.socket, timeout: float = DEFAULT_TIMEOUT_S, max_frame: int = DEFAULT_MAX_FRAME
    ) -> None:
        super().__init__(timeout, max_frame)
        sock.settimeout(timeout)
        self._sock = sock
        self._send_lock = threading.Lock()

    def _send_frame(self, payload: bytes | memoryview) -> None:
        try:
            with self._send_lock:
                if len(payload) <= _COALESCE_BYTES:
                    # One write, one TLS record: a peer blocked on this frame wakes once,
                    # not once for the header and again for the body (a request/answer
                    # session otherwise pays two scheduler wake-ups a frame under load).
                    self._sock.sendall(_HEADER.pack(len(payload)) + payload)
                else:
                    self._sock.sendall(_HEADER.pack(len(payload)))
                    self._sock.sendall(payload)
        except TimeoutError as exc:
            raise ChannelTimeout(f"peer did not read for {self.timeout:.0f}s") from exc
        except OSError as exc:
            raise PeerClosed(f"connection lost while sending: {exc.__class__.__name__}") from exc

    def _recv_exact(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        got = 0
        while got < size:
            try:
                n = self._sock.recv_into(view[got:], min(size - got, 1 << 22))
            except TimeoutError as exc:
                raise ChannelTimeout(f"no data from peer for {self.timeout:.0f}s") from exc
            except OSError as exc:
                raise PeerClosed(f"connection lost while receiving: {exc.__class__.__name__}") from exc
            if n == 0:
                raise PeerClosed("peer closed the connection mid-protocol")
            got += n
        return buffer

    def _recv_frame(self) -> bytes:
        (size,) = _HEADER.unpack(self._recv_exact(_HEADER.size))
        if size > self.max_frame:
            raise FrameTooLarge(f"peer announced a {size}-byte frame (limit {self.max_frame})")
        return bytes(self._recv_exact(size))

    def exchange(self, payload: bytes | bytearray | memoryview) -> bytes:
        """Full-duplex send and receive in one thread.

        An SSL socket must not be read and written from two threads at once (OpenSSL may
        write during a read, e.g. for TLS 1.3 tickets), and two blocking ``sendall`` calls
        of large frames would wait on each other, so this drives both directions from one
        non-blocking loop.
        """
        view = memoryview(payload).cast("B")
        if view.nbytes > self.max_frame:
            raise FrameTooLarge(f"refusing to send a {view.nbytes}-byte frame (limit {self.max_frame})")
        outgoing = [memoryview(_HEADER.pack(view.nbytes)), view]
        incoming = _FrameReader(self.max_frame)
        self._sock.setblocking(False)
        try:
            with self._send_lock:
                self._pump(outgoing, incoming)
        finally:
            self._sock.settimeout(self.timeout)
        self.stats.bytes_sent += view.nbytes + _HEADER.size
        self.stats.frames_sent += 1
        received = incoming.frame()
        self.stats.bytes_received += len(received) + _HEADER.size
        self.stats.frames_received += 1
        return received

    def _pump(self, outgoing: list[memoryview], incoming: _FrameReader) -> None:
        deadline = time.monotonic() + self.timeout
        while outgoing or not incoming.done:
            progressed = False
            if outgoing:
                try:
                    sent = self._sock.send(outgoing[0][: 1 << 20])
                except _WOULD_BLOCK:
                    sent = 0
                except OSError as exc:
                    raise PeerClosed(f"connection lost while sending: {exc.__class__.__name__}") from exc
                outgoing[0] = outgoing[0][sent:]
                if not outgoing[0]:
                    outgoing.pop(0)
                progressed = sent > 0
            if not incoming.done:
                try:
                    got = self._sock.recv_into(incoming.window()[: 1 << 22])
                except _WOULD_BLOCK:
                    got = -1
                except OSError as exc:
                    raise PeerClosed(f"connection lost while receiving: {exc.__class__.__name__}") from exc
                if got == 0:
                    raise PeerClosed("peer closed the connection mid-protocol")
                if got > 0:
                    incoming.advance(got)
                    progressed = True
            if progressed:
                deadline = time.monotonic() + self.timeout
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout(f"no progress with peer for {self.timeout:.0f}s")
            select.select([self._sock], [self._sock] if outgoing else [], [], min(remaining, 1.0))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


_CLOSED = object()


class MemoryChannel(Channel):
    """One end of an in-process channel pair, for tests and single-process runs."""

    def __init__(
        self,
        inbox: queue.Queue[object],
        outbox: queue.Queue[object],
        timeout: float = DEFAULT_TIMEOUT_S,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> None:
        super().__init__(timeout, max_frame)
        self._inbox = inbox
        self._outbox = outbox
        self._closed = False

    def _send_frame(self, payload: bytes | memoryview) -> None:
        if self._closed:
            raise PeerClosed("channel is closed")
        try:
            self._outbox.put(bytes(payload), timeout=self.timeout)
        except queue.Full as exc:
            raise ChannelTimeout(f"peer did not read for {self.timeout:.0f}s") from exc

    def _recv_frame(self) -> bytes:
        try:
            item = self._inbox.get(timeout=self.timeout)
        except queue.Empty as exc:
            raise ChannelTimeout(f"no frame from peer for {self.timeout:.0f}s") from exc
        if item is _CLOSED:
            self._inbox.put(_CLOSED)  # keep later reads failing the same way
            raise PeerClosed("peer closed the channel")
        assert isinstance(item, bytes)
        if len(item) > self.max_frame:
            raise FrameTooLarge(f"peer sent a {len(item)}-byte frame (limit {self.max_frame})")
        return item

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._outbox.put(_CLOSED)


def memory_pair(
    timeout: float = DEFAULT_TIMEOUT_S, max_frame: int = DEFAULT_MAX_FRAME, depth: int = 64
) -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected in-memory channels; each direction holds at most ``depth`` frames."""
    a_to_b: queue.Queue[object] = queue.Queue(depth)
    b_to_a: queue.Queue[object] = queue.Queue(depth)
    return (
        MemoryChannel(b_to_a, a_to_b, timeout, max_frame),
        MemoryChannel(a_to_b, b_to_a, timeout, max_frame),
    )


__all__ = [
    "DEFAULT_MAX_FRAME",
    "DEFAULT_TIMEOUT_S",
    "Channel",
    "ChannelError",
    "ChannelStats",
    "MemoryChannel",
    "SocketChannel",
    "decode_array",
    "encode_array",
    "memory_pair",
]
