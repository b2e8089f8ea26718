"""The one place where a payment's state changes meet the ledger.

Every function runs inside the transaction that changes the payment's row, so the row and
its postings commit or roll back together: exactly once. Each ledger call is idempotent by
its business event, so a retried transaction cannot post twice.

The fees and the business-day cut-off come from the network file (`blindgate.api.network`):
the acquirer's ``fee_rate`` is its merchant discount rate, the wallet's its share. They are
locked on the payment when it is accepted, so a later change of the file never reprices it.
Without a network (``None``) there are no fees and the day ends at 00:00 UTC.

The pay path hands its own writes to the ledger as riders (`blindgate.ledger.prepared.Rider`):
the payment's row travels with its pending hold, the settle with the capture or void (its
gate) and the notification with their entry, one statement for each pair on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from blindgate import ledger
from blindgate.api.network import Network
from blindgate.gateway.repository import PaymentRow
from blindgate.ledger.prepared import Rider


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
    conn: sa.Connection,
    payment: PaymentRow,
    at: datetime,
    network: Network | None = None,
    rider: Rider | None = None,
) -> None:
    """A payment was accepted and sent to the wallet: hold it in the ledger's pending bucket
    (with ``rider``, the payment's row: `Repository.inserting`)."""
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
    ledger.post_payment_pending(conn, terms, at=at, cutoff=cutoff_of(network), rider=rider)


def on_settled(
    conn: sa.Connection,
    payment_id: str,
    captured: bool,
    at: datetime,
    network: Network | None,
    *,
    gate: Rider,
    rider: Rider | None = None,
) -> bool:
    """The wallet's answer, once ``gate`` (the payment's row leaving PROCESSING:
    `Repository.settling`) changes the row: capture or void the hold, with ``rider`` (the
    notification). Whether it did: False, and nothing written, if another writer settled first."""
    post = ledger.post_payment_captured if captured else ledger.void_payment
    try:
        post(conn, payment_id, at=at, cutoff=cutoff_of(network), gate=gate, rider=rider)
    except ledger.GateRefused:
        return False
    return True


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
