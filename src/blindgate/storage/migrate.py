"""Bring a store to the current schema (Alembic), or say how far it is from it.

Who does what (docs/store.md, "Who upgrades"):

- ``blindgate gateway`` upgrades its store on start (`upgrade`): a new store is created, an
  older one (0.1.0's included: it has no version yet) is brought up, in one transaction (DDL
  is transactional on PostgreSQL, and on SQLite inside ``BEGIN IMMEDIATE``);
- ``blindgate ledger``, ``settle`` and the other commands that only read or post refuse a store
  that is not current (`require_current`: `StoreNotCurrent`, exit code 3), naming
  ``blindgate db upgrade``, rather than change a schema behind a running gateway's back;
- ``blindgate db upgrade`` / ``blindgate db current`` do it, or show it, by hand.

A store written by a later release (a revision this one does not know) is refused by all of
them (`StoreTooNew`): nothing is written.

Two processes upgrading one store at once do it one after the other: the upgrade holds the
store's migration lock (PostgreSQL: a transaction-level advisory lock; SQLite: the write lock,
``BEGIN IMMEDIATE``) and reads the store's revision only once it holds it.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from blindgate.storage.engine import open_engine, sqlite_file
from blindgate.storage.errors import StoreNotCurrent, StoreTooNew, StoreUnavailable
from blindgate.storage.schema import metadata

_SCRIPTS = "blindgate.storage:migrations"
_LOCK_KEY = 0x626C696E64676174  # "blindgat": the PostgreSQL advisory lock of a store's upgrade


@functools.cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", _SCRIPTS)
    return config


def head() -> str:
    """The revision this blindgate's schema is at."""
    revision = _scripts().get_current_head()
    assert revision is not None, "the migrations have one head"
    return revision


def current(engine: sa.Engine) -> str | None:
    """The store's revision; None for a store without one (empty, or made by 0.1.0)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine) -> None:
    """Bring the store to `head`: create it if it is empty, upgrade it if it is older."""
    if _known(current(engine)):
        return
    with engine.connect() as conn:
        _lock(conn)
        revision = MigrationContext.configure(conn).get_current_revision()
        if not _known(revision):
            if revision is None and not sa.inspect(conn).get_table_names():
                _create(conn)
            else:
                _migrate(conn)
        conn.commit()


def _migrate(conn: sa.Connection) -> None:
    """Run the revisions from the store's to `head` on ``conn`` (in its transaction)."""
    config = _config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _create(conn: sa.Connection) -> None:
    """An empty store: today's schema in one go, stamped `head` (Alembic's advice for new
    databases). tests/storage checks that it equals what running every revision makes."""
    for statement in _creation_ddl(conn.engine.url.drivername):
        conn.exec_driver_sql(statement)
    MigrationContext.configure(conn).stamp(_scripts(), "head")


@functools.cache
def _creation_ddl(drivername: str) -> tuple[str, ...]:
    """``metadata.create_all``'s statements for a dialect, compiled once per process.

    Compiling the DDL is most of the time ``create_all`` takes (tens of milliseconds of CPU for
    the whole schema), and every test and benchmark run creates stores.
    """
    statements: list[str] = []

    def record(element: sa.schema.ExecutableDDLElement, *_: object, **__: object) -> None:
        statements.append(str(element.compile(dialect=mock.dialect)))

    mock = sa.create_mock_engine(sa.engine.make_url(f"{drivername}://"), record)
    metadata.create_all(mock, checkfirst=False)
    return tuple(statements)


def require_current(engine: sa.Engine) -> None:
    """Refuse a store that is not at `head` (`StoreNotCurrent`, `StoreTooNew`)."""
    revision = current(engine)
    if not _known(revision):
        raise StoreNotCurrent(
            f"the store's schema is at {revision or 'no revision (0.1.0, or empty)'}, this blindgate's "
            f"at {head()}: run `blindgate db upgrade` (or start the gateway) first"
        )


def _known(revision: str | None) -> bool:
    """Whether ``revision`` is `head`; raises `StoreTooNew` for a revision this code does not know."""
    if revision is None:
        return False
    if revision == head():
        return True
    try:
        _scripts().get_revision(revision)
    except Exception:  # alembic raises its own CommandError/ResolutionError for an unknown id
        raise StoreTooNew(
            f"the store's schema is at revision {revision}, unknown to this blindgate (a later release's)"
        ) from None
    return False


def _lock(conn: sa.Connection) -> None:
    """Hold the store's migration lock until ``conn``'s transaction ends (module docstring)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def open_store(url: str, *, checkpoints: bool = False) -> sa.Engine:
    """An engine (`blindgate.storage.open_engine`) on the store at ``url``, at the current schema."""
    engine = open_engine(url, checkpoints=checkpoints)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def open_existing(url: str) -> sa.Engine:
    """An engine on the store at ``url``; `StoreUnavailable` if it is a SQLite file that does not
    exist (never created here: a typo in a path must not leave an empty store behind)."""
    engine = open_engine(url)
    database = sqlite_file(engine)
    if database is not None and not Path(database).is_file():
        engine.dispose()
        raise StoreUnavailable(f"no store at {database}")
    return engine


def open_current(url: str) -> sa.Engine:
    """An engine on the existing store at ``url``, refused unless it is at the current schema.

    What the commands that read or post use (module docstring): `StoreUnavailable` if there is
    no such store file, the driver's error if the server cannot be reached, `StoreNotCurrent` or
    `StoreTooNew` if its schema is not this release's.
    """
    engine = open_existing(url)
    try:
        require_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
