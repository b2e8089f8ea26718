"""The order codes' expiry-sweep index, on stores whose order-code table predates it.

Revision ID: 0002
Revises: 0001

The index on ``gw_order_codes (status, expires_at)`` came with the table's definition late in
0.1.0's life, and ``create_all`` never adds an index to a table that exists already: a store
created before it lacks it, and its expiry sweep reads the whole table every second. A store
that has it (created fresh) is left as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_INDEX, _TABLE = "ix_gw_order_codes_due", "gw_order_codes"


def upgrade() -> None:
    present = {index["name"] for index in sa.inspect(op.get_bind()).get_indexes(_TABLE)}
    if _INDEX not in present:
        op.create_index(_INDEX, _TABLE, ["status", "expires_at"])


def downgrade() -> None:
    pass  # 0001 stores may hold the index too: keep it
