"""Ledger stores on SQLite and PostgreSQL: every ledger test runs on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from blindgate.storage import open_engine
from blindgate.storage.migrate import upgrade


@pytest.fixture
def pg_schema_engine(pg_schema_url: str) -> Iterator[sa.Engine]:
    """An engine on a throw-away schema of the shared test database."""
    engine = open_engine(pg_schema_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    """A ledger store with its tables, on each backend."""
    if request.param == "sqlite":
        created = open_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        created = request.getfixturevalue("pg_schema_engine")
    upgrade(created)
    return created
