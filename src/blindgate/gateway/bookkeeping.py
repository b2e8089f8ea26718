"""The one place where a payment's state changes meet the ledger.

Every function runs inside the transaction that changes the payment's row, so the row and
its postings commit or roll back together: exactly once. Each ledger call is idempotent by
its business event, so a retried transaction cannot post twice.

The fees and the business-day cut-off come from the network file (`blindgate.api.network`):
the acquirer's ``fee_rate`` is its merchant discount rate, the wallet's its share. They are
locked on the payment when it is accepted, so a later change of the file never reprices it.
Without a network (``None``) there are no fees and the day ends at 00:00 UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from blindgate import ledger
from blindgate.api.network import Network
from blindgate.gateway.repository import PaymentRow


def cutoff_of(network: Network | None) -> ledger.Cutoff:
    """The network's daily cut-off (the ledger's default without a network)."""
    if network is None:
        return ledger.DEFAULT_CUTOFF
    return ledger.Cutoff(network.gateway.business_day_zone, network.gateway.business_day_cutoff)


def fees_of(network: Network | None, acquirer_id: str, wallet_id: str) -> ledger.FeeSchedule:
    """The fee rates the network file sets for this acquirer and this wallet."""
    acquirer = network.partner(acquirer_id) if network else None
    wallet = network.partner(wallet_id) if network else None
    return ledger.FeeSchedule(
        merchant_discount_rate=acquirer.fee_rate if acquirer else Decimal(0),
        wallet_share_rate=wallet.fee_rate if wallet else Decimal(0),
    )


def on_accepted(
    conn: sa.Connection, payment: PaymentRow, at: datetime, network: Network | None = None
) -> None:
    """A payment was accepted and sent to the wallet: hold it in the ledger's pending bucket."""
    terms = ledger.PaymentTerms(
        payment_id=payment.payment_id,
        acquirer_id=payment.acquirer_id,
        wallet_id=payment.wallet_id,
        currency=payment.currency,
        amount=payment.amount,
        wallet_currency=payment.wallet_currency,
        fx_rate=Decimal(payment.fx_rate),
        quote_id=payment.quote_id,
        fees=fees_of(network, payment.acquirer_id, payment.wallet_id),
    )
    ledger.post_payment_pending(conn, terms, at=at, cutoff=cutoff_of(network))


def on_captured(conn: sa.Connection, payment_id: str, at: datetime, network: Network | None = None) -> None:
    ledger.post_payment_captured(conn, payment_id, at=at, cutoff=cutoff_of(network))


def on_failed(conn: sa.Connection, payment_id: str, at: datetime, network: Network | None = None) -> None:
    ledger.void_payment(conn, payment_id, at=at, cutoff=cutoff_of(network))


def on_refunded(
    conn: sa.Connection,
    payment_id: str,
    refund_id: str,
    amount: int,
    at: datetime,
    network: Network | None = None,
) -> None:
    ledger.post_refund(conn, payment_id, refund_id, amount, at=at, cutoff=cutoff_of(network))


def on_cancelled(conn: sa.Connection, payment_id: str, at: datetime, network: Network | None = None) -> None:
    ledger.post_cancel(conn, payment_id, at=at, cutoff=cutoff_of(network))
