"""The transparency log's tables (SQLAlchemy Core), on their own ``MetaData``.

SQLite (WAL) by default, PostgreSQL by URL. What a row may hold is what an entry may hold
(see `entries`): ids, public keys, versions, digests, counts, times, signatures; never a
personal value.

- ``tl_entries``: one row per leaf, ``idx`` its position, ``data`` its exact bytes (the
  leaf hash is over them), ``leaf_hash`` unique (adding the same entry twice gives the
  first index back).
- ``tl_entry_parties``: which parties each entry is about (a partner's entries in one look-up).
- ``tl_nodes``: every *perfect* subtree's hash, keyed by (level, index) packed in one
  integer: about two rows per leaf; every proof is one primary-key ``IN`` read (`merkle`).
  The packing bounds a log at 2^48 entries (`store.MAX_LOG_SIZE`).
- ``tl_state``: one row holding the tree's size; appends lock it, so writers take turns.
- ``tl_heads``: one signed head per size; ``tl_cosignatures``: the witnesses' cosignatures.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

entries = sa.Table(
    "tl_entries",
    metadata,
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False, unique=True),
    sa.Column("entry_type", sa.String(32), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

entry_parties = sa.Table(
    "tl_entry_parties",
    metadata,
    sa.Column("party", sa.String(64), primary_key=True),
    sa.Column("entry_type", sa.String(32), primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True, autoincrement=False),
)

# One integer key per node, ``level << 48 | index`` (`node_key`): a plain ``IN`` list on the
# primary key, which both databases answer from the index (SQLite does not for row values).
NODE_INDEX_BITS = 48
nodes = sa.Table(
    "tl_nodes",
    metadata,
    sa.Column("node", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)


def node_key(level: int, index: int) -> int:
    assert 0 <= level <= NODE_INDEX_BITS and 0 <= index < 1 << (NODE_INDEX_BITS - level)
    return level << NODE_INDEX_BITS | index


state = sa.Table(
    "tl_state",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

heads = sa.Table(
    "tl_heads",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("root", sa.LargeBinary(32), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.String(100), nullable=False),
)

cosignatures = sa.Table(
    "tl_cosignatures",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("witness", sa.String(64), primary_key=True),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.String(100), nullable=False),
)


def create_tables(engine: sa.Engine) -> None:
    """Create the tables if absent, and the state row of an empty log."""
    metadata.create_all(engine)
    try:
        with engine.begin() as connection:
            if connection.execute(sa.select(state.c.size).where(state.c.id == 1)).first() is None:
                connection.execute(state.insert().values(id=1, size=0))
    except sa.exc.IntegrityError:
        pass  # another process made it first
