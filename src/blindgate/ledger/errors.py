"""The ledger's errors, under one root, `LedgerError`. Messages name the rule or the row, never a person."""

from __future__ import annotations

from blindgate.errors import BlindgateError


class LedgerError(BlindgateError):
    """The ledger's root: the request broke a ledger rule; nothing was written."""


class NaiveTime(LedgerError, ValueError):
    """A time given to the ledger without a time zone (the business day would be a guess)."""


class UnknownPayment(LedgerError):
    """No pending posting exists for this payment id."""


class GateRefused(LedgerError):
    """The caller's guarded change that a posting waits on (its ``gate``) changed no row."""


class PaymentAlreadyResolved(LedgerError):
    """The payment was already captured or voided the other way."""


class PaymentNotCaptured(LedgerError):
    """A refund or cancel-reversal needs a captured payment."""


class ConflictingEvent(LedgerError):
    """The business-event key was already used with different figures (a replay must match)."""


class RefundExceedsRemaining(LedgerError):
    """A refund larger than what remains of the payment after earlier refunds and cancels."""


class CancelWindowClosed(LedgerError):
    """A cancel after the cancel window of a captured payment."""


class BusinessDayOpen(LedgerError):
    """Settlement of a business day that is not closed yet."""


class InvalidAmount(LedgerError):
    """An amount that is not a positive integer of minor units, or an unknown currency."""


class LedgerInvariantBroken(AssertionError):
    """Something impossible happened (unbalanced postings): fail loudly, write nothing.

    Deliberately not a `LedgerError` (nor a `BlindgateError`): it signals a bug in blindgate,
    not a request to refuse, so no ``except LedgerError`` or ``except BlindgateError`` may
    swallow it and carry on."""
