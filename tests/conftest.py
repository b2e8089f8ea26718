"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

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
