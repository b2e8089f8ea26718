"""Alembic's environment: runs the revisions on the connection `blindgate.storage.migrate` hands over.

There is no ``alembic.ini`` and no URL here: the caller opens the store with the one engine
factory (`blindgate.storage.open_engine`) and passes its connection, already in a
transaction that holds the store's migration lock.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from blindgate.storage.schema import metadata

connection = context.config.attributes["connection"]
assert isinstance(connection, sa.Connection), "run the migrations through blindgate.storage.migrate"
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
