"""The baseline: the schema of blindgate 0.1.0, the last release without migrations.

Revision ID: 0001
Revises: (none)

Frozen as 0.1.0 created it (``MetaData.create_all``); never edit it, add a revision instead.
It creates only the tables a store lacks: a store that 0.1.0 (or an earlier build) created
has no ``alembic_version`` and starts here, keeping its tables and rows, exactly as 0.1.0's
``create_all`` treated it on every start. The ledger's rows are immutable by trigger, made with
their tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_schema = sa.MetaData()

sa.Table(
    "gw_payments",
    _schema,
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
    sa.Column("customer_sealed", sa.Text, nullable=True),
    sa.Column("wallet_payment_id", sa.String(64), nullable=True),
    sa.Column("notify_url", sa.String(1024), nullable=True),
    sa.Column("refunded", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("acquirer_id", "payment_request_id", name="uq_gw_payment_request"),
)
sa.Table(
    "gw_refunds",
    _schema,
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
sa.Table(
    "gw_refund_shares",
    _schema,
    sa.Column("refund_id", sa.String(40), primary_key=True),
    sa.Column("wallet_amount", sa.BigInteger, nullable=False),
)
sa.Table(
    "gw_cancel_holds",
    _schema,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "gw_notifications",
    _schema,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
)
sa.Table(
    "gw_risk_payers",
    _schema,
    sa.Column("wallet_id", sa.String(64), primary_key=True),
    sa.Column("pseudonym", sa.String(80), primary_key=True),
    sa.Column("checks", sa.BigInteger, nullable=False),
)
sa.Table(
    "gw_order_codes",
    _schema,
    sa.Column("payment_id", sa.String(40), primary_key=True),
    sa.Column("acquirer_id", sa.String(64), nullable=False),
    sa.Column("payment_request_id", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("code_value", sa.String(64), nullable=False, unique=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("notify_url", sa.String(1024), nullable=True),
    sa.Column("order_summary", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("wallet_id", sa.String(64), nullable=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("acquirer_id", "payment_request_id", name="uq_gw_order_code_request"),
    # 0.1.0 created this index with the table; a store whose table is older lacks it (0002).
    sa.Index("ix_gw_order_codes_due", "status", "expires_at"),
)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_entries = sa.Table(
    "ledger_entries",
    _schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.String(128), nullable=True, index=True),
    sa.Column("business_date", sa.Date(), nullable=False, index=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acquirer_id", sa.String(64), nullable=True),
    sa.Column("wallet_id", sa.String(64), nullable=True),
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
_lines = sa.Table(
    "ledger_lines",
    _schema,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("entry_id", sa.BigInteger(), sa.ForeignKey("ledger_entries.id"), nullable=False, index=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("bucket", sa.String(8), nullable=False),
    sa.Column("amount", sa.BigInteger(), nullable=False),
    sa.CheckConstraint("bucket IN ('pending', 'posted')", name="ledger_lines_bucket"),
    sa.CheckConstraint("amount <> 0", name="ledger_lines_nonzero"),
    sa.Index("ledger_lines_account", "owner", "currency", "kind"),
)
sa.Table(
    "ledger_days",
    _schema,
    sa.Column("business_date", sa.Date(), primary_key=True),
    sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Table(
    "ledger_batches",
    _schema,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("business_date", sa.Date(), nullable=False, index=True),
    sa.Column("partner_id", sa.String(64), nullable=False),
    sa.Column("role", sa.String(8), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("transaction_count", sa.Integer(), nullable=False),
    sa.Column("net_amount", sa.BigInteger(), nullable=False),
    sa.UniqueConstraint("business_date", "partner_id", "role", "currency", name="ledger_batches_one_per_day"),
)

_IMMUTABLE = "ledger rows are immutable: post a correcting entry instead"
for _table in (_entries, _lines):
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


def upgrade() -> None:
    _schema.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    raise NotImplementedError("the baseline is not undone: restore a backup of the store instead")
