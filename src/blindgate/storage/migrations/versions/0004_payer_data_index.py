"""The retention purge's index: payments that still hold payer data, by age (partial).

Revision ID: 0004
Revises: 0003

`blindgate.storage.retention` searches, every hour and once per batch, for payments past their
retention that still hold a pseudonym or a sealed customerId. Without an index that is a scan of
the whole payments table, which grows by every payment the network ever made; the partial index
holds only the rows not purged yet (`storage.schema.HOLDING_PAYER_DATA`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_INDEX, _TABLE = "ix_gw_payments_payer_data", "gw_payments"
_WHERE = "pseudonym IS NOT NULL OR customer_sealed IS NOT NULL"  # storage.schema.HOLDING_PAYER_DATA, frozen


def upgrade() -> None:
    present = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(_TABLE)}
    if _INDEX not in present:
        op.create_index(
            _INDEX, _TABLE, ["created_at"], sqlite_where=sa.text(_WHERE), postgresql_where=sa.text(_WHERE)
        )


def downgrade() -> None:
    op.drop_index(_INDEX, _TABLE)
