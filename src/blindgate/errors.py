"""The root of every error blindgate raises on purpose.

Each package has one root beneath this one (`CryptoError`, `ChannelError`, `ApiError`,
`LedgerError`, `PsiError`, ...) and raises only types under its root, so a caller catches a
package's failures with one `except` and a command line catches `BlindgateError` alone to
turn any of them into a message on stderr and an exit code. Messages never carry a personal
value (see `crypto/errors.py`).
"""

from __future__ import annotations


class BlindgateError(Exception):
    """A failure that blindgate detected and can explain; never a bug."""
