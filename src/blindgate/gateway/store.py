"""The gateway's own tables (SQLAlchemy Core): payments, refunds, notifications.

SQLite (WAL, busy timeout) by default, PostgreSQL by URL; the ledger's tables live beside
these on their own ``MetaData`` and are written in the same transactions.

What a row may hold (the gateway is blind): ids, amounts, currencies, the FX quote, the
wallet's pseudonym of the payer, status codes, and ciphertext (envelopes sealed to a
partner). Never a payment code, a name, an IP or any other payer value in clear.

Idempotency rests on unique constraints, not on read-then-write: ``(acquirer_id,
payment_request_id)`` and ``(acquirer_id, refund_request_id)``. Two concurrent duplicates
race to the INSERT; the loser gets an IntegrityError and reads the winner's row.
"""

from __future__ import annotations

import sqlalchemy as sa

from blindgate.gateway import ledger

metadata = sa.MetaData()

# Payment status: PROCESSING (asked the wallet, no answer yet: "U"), SUCCESS, FAIL, CANCELLED.
PROCESSING, SUCCESS, FAIL, CANCELLED = "PROCESSING", "SUCCESS", "FAIL", "CANCELLED"

payments = sa.Table(
    "gw_payments",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("payment_request_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("wallet_currency", sa.String(3), nullable=False),
    sa.Column("wallet_amount", sa.BigInteger, nullable=False),
    sa.Column("quote_id", sa.String(40), nullable=False),
    sa.Column("fx_rate", sa.String(40), nullable=False),
    sa.Column("quote_expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result_code", sa.String(40), nullable=False),
    sa.Column("pseudonym", sa.String(80), nullable=True, index=True),
    sa.Column("customer_sealed", sa.Text, nullable=True),  # the wallet's customerId, sealed to the acquirer
    sa.Column("wallet_payment_id", sa.String(64), nullable=True),
    sa.Column("notify_url", sa.String(1024), nullable=True),
    sa.Column("refunded", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("acquirer_id", "payment_request_id", name="uq_gw_payment_request"),
)

refunds = sa.Table(
    "gw_refunds",
    metadata,
    sa.Column("refund_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("refund_request_id", sa.String(64), nullable=False),
    sa.Column("payment_id", sa.String(40), nullable=False, index=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("result_code", sa.String(40), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("acquirer_id", "refund_request_id", name="uq_gw_refund_request"),
)

# Outbox of payment-result notifications: written in the payment's own transaction.
notifications = sa.Table(
    "gw_notifications",
    metadata,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # ids, amounts, result, sealed customerId
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
)


def open_database(url: str) -> sa.Engine:
    """An engine with every table (the gateway's and the ledger's) created if absent."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: object, _record: object) -> None:
            cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    else:
        engine = sa.create_engine(url, pool_size=10, max_overflow=10)
    metadata.create_all(engine)
    ledger.create_tables(engine)
    return engine
