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
    3  a peer, the dealer or the network failed, misbehaved or went quiet
    4  a joint computation failed in a way that a new run avoids

An error type states its status in ``exit_status`` (bad input unless it says otherwise);
:func:`run_command` is the one place that turns an error into a line on stderr and that
status.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import ClassVar

EXIT_OK = 0
EXIT_FOUND = 1
EXIT_INPUT = 2
EXIT_PEER = 3
EXIT_COMPUTE = 4

EXIT_STATUSES = """exit status: 0 done; 2 bad arguments, configuration or input; 3 a peer, the
dealer or the network failed; 4 the joint computation failed (run it again). Errors are one
line on stderr and never carry a key or a data value."""


class BlindgateError(Exception):
    """A failure that blindgate detected and can explain; never a bug."""

    exit_status: ClassVar[int] = EXIT_INPUT


def run_command(command: str, action: Callable[[], int]) -> int:
    """Run a command's work; turn a `BlindgateError` or an `OSError` into one line on stderr.

    An `OSError` here is a file this party named that cannot be read or written: bad
    input. Anything else is a bug and keeps its traceback.
    """
    try:
        return action()
    except BlindgateError as exc:
        return _fail(command, exc, exc.exit_status)
    except OSError as exc:
        return _fail(command, exc, EXIT_INPUT)


_KIND = {EXIT_INPUT: "input error", EXIT_PEER: "peer failure", EXIT_COMPUTE: "computation failed"}


def _fail(command: str, exc: BaseException, status: int) -> int:
    detail = f"{exc.__class__.__name__}: {exc}" if str(exc) else exc.__class__.__name__
    print(f"blindgate {command}: {_KIND.get(status, 'error')}: {detail}", file=sys.stderr)
    return status


__all__ = [
    "EXIT_COMPUTE",
    "EXIT_FOUND",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_PEER",
    "EXIT_STATUSES",
    "BlindgateError",
    "run_command",
]
