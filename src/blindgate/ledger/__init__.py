"""The gateway's double-entry ledger: exact money, posted exactly once.

Public API: on a store at the current schema (`blindgate.storage`: the ledger's tables are in
its one schema, beside the gateway's), inside the gateway's own transaction,

- ``post_payment_pending(conn, PaymentTerms(...), at=...)`` when a payment is accepted,
- ``post_payment_captured(conn, payment_id, at=...)`` when the wallet debited the payer,
- ``void_payment(conn, payment_id, at=...)`` when it failed,
- ``post_refund(conn, payment_id, refund_id, amount, at=...)``,
- ``post_cancel(conn, payment_id, at=..., window=...)``.

Each is idempotent by its business event; every refusal is a ``LedgerError`` subclass
raised before anything is written. The caller's own writes may ride in these statements
(``rider=``, and ``gate=`` for a capture or void: `blindgate.ledger.prepared.Rider`).
``check_ledger`` checks the whole store. The money flow and sign convention are in
``postings``; the rounding rule in ``money``; business days in ``calendar``. See docs/ledger.md.
"""

from blindgate.ledger.calendar import Cutoff, close_business_day
from blindgate.ledger.check import CheckReport, check_ledger
from blindgate.ledger.errors import (
    BusinessDayOpen,
    CancelWindowClosed,
    ConflictingEvent,
    GateRefused,
    InvalidAmount,
    LedgerError,
    LedgerInvariantBroken,
    NaiveTime,
    PaymentAlreadyResolved,
    PaymentNotCaptured,
    RefundExceedsRemaining,
    UnknownPayment,
)
from blindgate.ledger.money import FeeSchedule, convert, exponent, fee
from blindgate.ledger.postings import (
    DEFAULT_CANCEL_WINDOW,
    DEFAULT_CUTOFF,
    PaymentTerms,
    Posting,
    post_cancel,
    post_payment_captured,
    post_payment_pending,
    post_refund,
    post_settlement,
    void_payment,
)

__all__ = [
    "DEFAULT_CANCEL_WINDOW",
    "DEFAULT_CUTOFF",
    "BusinessDayOpen",
    "CancelWindowClosed",
    "CheckReport",
    "ConflictingEvent",
    "Cutoff",
    "FeeSchedule",
    "GateRefused",
    "InvalidAmount",
    "LedgerError",
    "LedgerInvariantBroken",
    "NaiveTime",
    "PaymentAlreadyResolved",
    "PaymentNotCaptured",
    "PaymentTerms",
    "Posting",
    "RefundExceedsRemaining",
    "UnknownPayment",
    "check_ledger",
    "close_business_day",
    "convert",
    "exponent",
    "fee",
    "post_cancel",
    "post_payment_captured",
    "post_payment_pending",
    "post_refund",
    "post_settlement",
    "void_payment",
]
