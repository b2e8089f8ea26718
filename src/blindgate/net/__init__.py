"""Framed, authenticated channels between parties (TCP with pinned TLS, or in memory)."""

from blindgate.net.channel import Channel, ChannelStats, MemoryChannel, SocketChannel, memory_pair
from blindgate.net.errors import (
    BadAddress,
    ChannelError,
    ChannelTimeout,
    FrameTooLarge,
    MalformedFrame,
    PeerClosed,
    ProtocolMismatch,
)
from blindgate.net.ports import free_port
from blindgate.net.tls import Identity, Listener, connect, listen

__all__ = [
    "BadAddress",
    "Channel",
    "ChannelError",
    "ChannelStats",
    "ChannelTimeout",
    "FrameTooLarge",
    "Identity",
    "Listener",
    "MalformedFrame",
    "MemoryChannel",
    "PeerClosed",
    "ProtocolMismatch",
    "SocketChannel",
    "connect",
    "free_port",
    "listen",
    "memory_pair",
]
