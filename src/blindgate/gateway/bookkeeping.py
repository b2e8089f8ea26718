"""The one place where a payment's state changes meet the ledger (contract 5).

Every function runs inside the transaction that changes the payment's row, so the row and
its postings commit or roll back together: exactly once. Each ledger call is idempotent by
its business event, so a retried transaction cannot post twice.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from blindgate.gateway import ledger


def on_accepted(conn: sa.Connection, payment: dict[str, Any], at: datetime) -> None:
    """A payment was accepted and sent to the wallet: hold it in the ledger's pending bucket."""
    terms = ledger.PaymentTerms(
        payment_id=payment["payment_id"],
        acquirer_id=payment["acquirer_id"],
        wallet_id=payment["wallet_id"],
        currency=payment["currency"],
        amount=payment["amount"],
        wallet_currency=payment["wallet_currency"],
        fx_rate=Decimal(payment["fx_rate"]),
        quote_id=payment["quote_id"],
    )
    ledger.post_payment_pending(conn, terms, at=at)


def on_captured(conn: sa.Connection, payment_id: str, at: datetime) -> None:
    ledger.post_payment_captured(conn, payment_id, at=at)


def on_failed(conn: sa.Connection, payment_id: str, at: datetime) -> None:
    ledger.void_payment(conn, payment_id, at=at)


def on_refunded(conn: sa.Connection, payment_id: str, refund_id: str, amount: int, at: datetime) -> None:
    ledger.post_refund(conn, payment_id, refund_id, amount, at=at)


def on_cancelled(conn: sa.Connection, payment_id: str, at: datetime) -> None:
    ledger.post_cancel(conn, payment_id, at=at)
