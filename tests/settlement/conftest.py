"""Settlement tests reuse the ledger's stores on SQLite and PostgreSQL."""

from tests.ledger.conftest import engine, pg_schema_engine

__all__ = ["engine", "pg_schema_engine"]
