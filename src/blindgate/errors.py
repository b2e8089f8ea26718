"""The root of every error blindgate raises on purpose, and the exit statuses of its commands.

Each package has one root beneath this one (`CryptoError`, `ChannelError`, `ApiError`,
`LedgerError`, `PsiError`, `MpcError`, `MlError`, ...) and raises only types under its
root, so a caller catches a package's failures with one `except` and a command line
catches `BlindgateError` alone to turn any of them into a message on stderr and an exit
code. Messages never carry a personal value (see `crypto/errors.py`).

Every `blindgate` command exits with the same statuses:

    0  done
    1  the command ran and found something to report (a ledger break, personal data)
    2  bad arguments, configuration or input (also argparse's own status for bad usage)
    3  a peer, the dealer, the network or the store failed, misbehaved or went quiet
    4  a joint computation failed in a way that a new run avoids

An error type states its status in ``exit_status`` (bad input unless it says otherwise);
`blindgate.commandline` is the one place that turns an error into a line on stderr and that
status, and documents the statuses in every command's --help (`EXIT_CODES`).
"""

from __future__ import annotations

from typing import ClassVar

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_INPUT = 2
EXIT_PEER = 3
EXIT_COMPUTE = 4


class BlindgateError(Exception):
    """A failure that blindgate detected and can explain; never a bug."""

    exit_status: ClassVar[int] = EXIT_INPUT


__all__ = [
    "EXIT_COMPUTE",
    "EXIT_FOUND",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_PEER",
    "BlindgateError",
]
