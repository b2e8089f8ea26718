"""The ledger's tables, on their own SQLAlchemy ``MetaData`` (created beside the gateway's).

- ``ledger_entries``: one row per business event (a payment's pending hold, its capture or
  void, a refund, a cancel, a settlement), unique by ``event_key`` so a replay can never post
  twice. Rows are immutable: a correction is a new entry, never an update.
- ``ledger_lines``: the double-entry lines of an entry. An account is the triple
  (owner, kind, currency); ``bucket`` says whether a line holds money ``pending`` (a payment
  in process) or ``posted``. Sign: positive is a debit (owed to the gateway), negative a
  credit (owed by the gateway, or its income). Each entry's lines sum to zero per currency
  and bucket, so every currency of the whole store does too.
- ``ledger_days``: one row per closed business day; postings never land in a closed day.
- ``ledger_batches``: settlement batches, one per partner per currency per business day.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# The gateway's own accounts are owned by this id; partners are owned by their partner id.
GATEWAY = "gateway"

entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    # PENDING, CAPTURE, VOID, REFUND, CANCEL, SETTLEMENT
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(128), nullable=True, index=True),
    sa.Column("business_date", sa.Date(), nullable=False, index=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acquirer_id", sa.String(64), nullable=True),
    sa.Column("wallet_id", sa.String(64), nullable=True),
    # The figures of the event, as magnitudes: amount in the payment's (acquirer's) currency,
    # wallet_amount in the wallet's currency at the locked quote, and the two fees.
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("amount", sa.BigInteger(), nullable=True),
    sa.Column("wallet_currency", sa.String(3), nullable=True),
    sa.Column("wallet_amount", sa.BigInteger(), nullable=True),
    sa.Column("fx_rate", sa.String(40), nullable=True),
    sa.Column("quote_id", sa.String(64), nullable=True),
    sa.Column("acquirer_fee", sa.BigInteger(), nullable=True),
    sa.Column("wallet_fee", sa.BigInteger(), nullable=True),
    sa.Column("batch_id", sa.String(64), nullable=True),
)

lines = sa.Table(
    "ledger_lines",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("entry_id", sa.BigInteger(), sa.ForeignKey("ledger_entries.id"), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False),
    # wallet_receivable, acquirer_payable, fx_position, fee_income, settlement_cash
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("bucket", sa.String(8), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("bucket IN ('pending', 'posted')", name="ledger_lines_bucket"),
    sa.CheckConstraint("amount <> 0", name="ledger_lines_nonzero"),
)
sa.Index("ledger_lines_account", lines.c.owner, lines.c.currency, lines.c.kind)

days = sa.Table(
    "ledger_days",
    metadata,
    sa.Column("business_date", sa.Date(), primary_key=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
)

batches = sa.Table(
    "ledger_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("business_date", sa.Date(), nullable=False, index=True),
    sa.Column("partner_id", sa.String(64), nullable=False),
    sa.Column("role", sa.String(8), nullable=False),  # WALLET or ACQUIRER
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("transaction_count", sa.Integer(), nullable=False),
    sa.Column("net_amount", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("business_date", "partner_id", "role", "currency", name="ledger_batches_one_per_day"),
)


def create_tables(bind: sa.Engine | sa.Connection) -> None:
    """Create the ledger's tables where they are missing (idempotent)."""
    metadata.create_all(bind)


# Postings are immutable in the store itself, not only by convention: UPDATE and DELETE on
# entries and lines are refused by a trigger (a correction is a new entry).
_IMMUTABLE = "ledger rows are immutable: post a correcting entry instead"
for _table in (entries, lines):
    for _action in ("UPDATE", "DELETE"):
        sa.event.listen(
            _table,
            "after_create",
            sa.DDL(
                f"CREATE TRIGGER {_table.name}_no_{_action.lower()} BEFORE {_action} ON {_table.name} "
                f"BEGIN SELECT RAISE(ABORT, '{_IMMUTABLE}'); END"
            ).execute_if(dialect="sqlite"),
        )
    sa.event.listen(
        _table,
        "after_create",
        sa.DDL(
            "CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{_IMMUTABLE}'; END $$"
        ).execute_if(dialect="postgresql"),
    )
    sa.event.listen(
        _table,
        "after_create",
        sa.DDL(
            f"CREATE TRIGGER {_table.name}_immutable BEFORE UPDATE OR DELETE ON {_table.name} "
            "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()"
        ).execute_if(dialect="postgresql"),
    )

TRIGGERS = {
    "sqlite": [f"{t.name}_no_{a}" for t in (entries, lines) for a in ("update", "delete")],
    "postgresql": [f"{t.name}_immutable" for t in (entries, lines)],
}
