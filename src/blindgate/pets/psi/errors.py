"""Errors of the PSI toolkit. Messages name the cause, never a key or a row's content."""

from __future__ import annotations

from blindgate.errors import BlindgateError


class PsiError(BlindgateError):
    """The PSI run cannot go on; nothing was written."""


class InputError(PsiError):
    """The input file, its key columns or the declared normalisation are unusable."""


class ParameterMismatch(PsiError):
    """The two parties declared different modes, protocols or normalisations."""
