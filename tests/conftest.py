"""Fixtures shared by the whole suite."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PG_URL = os.environ.get("BLINDGATE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def bank_marketing_csv() -> Path:
    """The UCI bank-marketing file from ../shared/data; the test skips when it is absent."""
    path = SHARED_DATA / "bank-marketing.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/data is for tests and benchmarks only)")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the test PostgreSQL database. It must be running: .ci/run starts it."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(PG_URL)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL is not running at {PG_URL}: {exc.__class__.__name__}")
    finally:
        engine.dispose()
    yield PG_URL


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """URL of a throw-away schema of the test database (other processes can open it too),
    so that parallel runs never meet; dropped with everything in it afterwards."""
    with throwaway_schema(postgres_url) as url:
        yield url


@contextlib.contextmanager
def throwaway_schema(postgres_url: str) -> Iterator[str]:
    """A new schema of the test database, as a URL whose search path is it; dropped afterwards."""
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
