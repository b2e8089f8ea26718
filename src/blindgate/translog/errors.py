"""The errors of `blindgate.translog`, all under `TranslogError`.

Each class carries the exit status that ``blindgate log`` turns it into (``exit_status``, as
every `BlindgateError` does; the log's table is longer than the other commands'), so the
command line (`blindgate.commandline.run_command`) maps a failure to its status in one place. Messages name
the check that failed and, at most, a partner id, an entry index, a tree size or a key
version: never a key's bytes, an entry's body or any personal value.
"""

from __future__ import annotations

from typing import ClassVar

from blindgate.errors import BlindgateError


class TranslogError(BlindgateError):
    """Root of every failure this package detects."""

    exit_status: ClassVar[int] = 1


class MalformedEntry(TranslogError):
    """An entry, a tree head, a proof or a request does not parse as its format says."""

    exit_status = 2


class InvalidProof(TranslogError):
    """An inclusion or consistency proof does not lead to the root it claims."""

    exit_status = 3


class InconsistentLog(InvalidProof):
    """Two tree heads that cannot both be true: the log was rewritten, truncated or forked."""


class SignatureRefused(TranslogError):
    """A signature on an entry, a head or a cosignature is missing or does not verify."""

    exit_status = 4


class KeyRefused(TranslogError):
    """A key may not be used: not published in the log, revoked, substituted, or the log is untrusted."""

    exit_status = 5


class SplitView(InconsistentLog, KeyRefused):
    """The log showed two views that cannot both be true (signed by the log: evidence).

    Also a `KeyRefused`: from the moment it is detected, no key the log vouches for is used.
    """

    exit_status = 9


class WitnessRefused(TranslogError):
    """A witness refused to cosign a head (older than, or inconsistent with, the last it signed).

    ``last_size`` is the size of the last head the witness cosigned, when that is the
    reason (the log then proves consistency from that size instead).
    """

    exit_status = 6

    def __init__(self, message: str, last_size: int | None = None) -> None:
        super().__init__(message)
        self.last_size = last_size


class LogUnavailable(TranslogError):
    """The log or a witness did not answer in time, or answered outside the protocol."""

    exit_status = 7


class StateError(TranslogError):
    """A local state file (seen heads, witness state) is missing, unreadable or from another log."""

    exit_status = 8


EXIT_CODES: dict[str, int] = {
    cls.__name__: cls.exit_status
    for cls in (
        TranslogError,
        MalformedEntry,
        InvalidProof,
        SignatureRefused,
        KeyRefused,
        WitnessRefused,
        LogUnavailable,
        StateError,
        SplitView,
    )
}
