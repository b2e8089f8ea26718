"""Ledger stores on SQLite and PostgreSQL: every ledger test runs on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.ledger import create_tables


def sqlite_engine(path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{path}")

    @sa.event.listens_for(engine, "connect")
    def _wal(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.execute("PRAGMA journal_mode=WAL")

    return engine


@pytest.fixture
def pg_schema_engine(pg_schema_url: str) -> Iterator[sa.Engine]:
    """An engine on a throw-away schema of the shared test database."""
    engine = sa.create_engine(pg_schema_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    """A ledger store with its tables, on each backend."""
    if request.param == "sqlite":
        created = sqlite_engine(tmp_path / "ledger.db")
    else:
        created = request.getfixturevalue("pg_schema_engine")
    create_tables(created)
    return created
