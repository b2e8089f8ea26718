"""Errors of joint training and prediction. Messages name the file, column or cause, never
a cell's value: values are personal data."""

from __future__ import annotations

from blindgate.errors import EXIT_COMPUTE, EXIT_PEER, BlindgateError


class MlError(BlindgateError):
    """Training or prediction cannot go on; nothing was written."""


class DataError(MlError):
    """The input table or a model file cannot be used; the message names the column or cause."""


class SettingsError(MlError):
    """Settings that cannot make a run: a missing flag, epochs, a learning rate out of range."""


class TruncationFailure(MlError):
    """The trained weights left the fixed-point range: the weights are garbage.

    Neither source's truncation fails any more (the dealer's pair, and dealer-free the
    known-MSB rule, are exact for |raw| < 2^62), so this is a guard: it would take a value
    beyond the fixed-point range, or a source that truncates locally (SecureML's rule).
    """

    exit_status = EXIT_COMPUTE


class MlPeerError(MlError):
    """The peer trains with other hyper-parameters or aligned other rows (tree training)."""

    exit_status = EXIT_PEER
