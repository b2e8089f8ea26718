"""The store under the ledger and the gateway: one schema, one engine factory, migrations.

- `schema`: every table, on one ``MetaData``;
- `engine`: `open_engine`, the one engine factory (SQLite WAL and writers' turns, PostgreSQL);
- `migrate`: Alembic migrations: `migrate.upgrade` creates or upgrades a store,
  `migrate.require_current` refuses one that is behind (imported on its own: Alembic is
  a fifth of a second to import, which the commands that never migrate do not pay);
- `locate`: which store a command means (``--db``, ``$BLINDGATE_DB``, the demo's).

Layering: the library (schema, engine, migrate, offload, retention) imports nothing of
blindgate's but `blindgate.errors`; its command line (`storage.commands`, ``blindgate db``)
also uses `blindgate.commandline` and the network-file loader (`blindgate.api.network`, for the
purge's windows). The ledger, settlement and the gateway import it.
"""

from blindgate.storage.engine import open_engine
from blindgate.storage.errors import (
    BadStoreUrl,
    NoStore,
    StorageError,
    StoreNotCurrent,
    StoreTooNew,
    StoreUnavailable,
)
from blindgate.storage.locate import resolve_db_url

__all__ = [
    "BadStoreUrl",
    "NoStore",
    "StorageError",
    "StoreNotCurrent",
    "StoreTooNew",
    "StoreUnavailable",
    "open_engine",
    "resolve_db_url",
]
