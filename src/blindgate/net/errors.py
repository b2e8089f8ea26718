"""Errors a channel raises. Each names the cause; none carries payload bytes."""

from __future__ import annotations

from blindgate.errors import EXIT_INPUT, EXIT_PEER, BlindgateError


class ChannelError(BlindgateError):
    """The channel cannot go on: the peer left, misbehaved or went quiet."""

    exit_status = EXIT_PEER


class BadAddress(ChannelError):
    """An address that is not ``HOST:PORT``: this party's configuration, not the peer's fault."""

    exit_status = EXIT_INPUT


class PeerClosed(ChannelError):
    """The peer closed the connection, or it was cut, before a whole frame arrived."""


class ChannelTimeout(ChannelError):
    """No progress from the peer within the channel's timeout."""


class FrameTooLarge(ChannelError):
    """A frame announced more bytes than this channel accepts."""


class MalformedFrame(ChannelError):
    """A frame that does not parse as what the protocol expects at this point."""


class ProtocolMismatch(ChannelError):
    """The peer speaks another protocol, or another version of it."""
