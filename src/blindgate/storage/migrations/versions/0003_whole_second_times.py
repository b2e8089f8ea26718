"""Times about a payment to the whole second, in the rows earlier releases wrote.

Revision ID: 0003
Revises: 0002

From this release on the schema's `WholeSeconds` columns drop a time's fraction as it is
written (`blindgate.storage.schema` says why no column needs finer); this floors what is
already stored, so an old row tells no more than a new one. The column types do not change
(a fraction is simply zero). ``ledger_entries.occurred_at`` is left as it is: ledger rows are
immutable (their triggers refuse an UPDATE), and a correction would be a new entry.

Each table is one UPDATE in the migration's transaction; on a large store, run
``blindgate db upgrade`` before starting the gateways (docs/store.md).
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FLOORED = {
    "gw_payments": ("created_at", "updated_at", "quote_expires_at"),
    "gw_refunds": ("created_at",),
    "gw_cancel_holds": ("created_at",),
    "gw_notifications": ("next_at", "delivered_at"),
    "gw_order_codes": ("expires_at", "created_at", "updated_at"),
}


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for table, columns in FLOORED.items():
        for column in columns:
            op.execute(_floor_postgresql(table, column) if postgresql else _floor_sqlite(table, column))


def _floor_postgresql(table: str, column: str) -> str:
    return (
        f"UPDATE {table} SET {column} = date_trunc('second', {column}) "
        f"WHERE {column} <> date_trunc('second', {column})"
    )


def _floor_sqlite(table: str, column: str) -> str:
    # SQLAlchemy keeps a SQLite DATETIME as text, 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return (
        f"UPDATE {table} SET {column} = substr({column}, 1, 19) || '.000000' "
        f"WHERE length({column}) > 19 AND substr({column}, 21) <> '000000'"
    )


def downgrade() -> None:
    pass  # a dropped fraction cannot come back
