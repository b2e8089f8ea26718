"""Migrations: a store made by the previous release (0.1.0, tests/data/previous_release) is
upgraded, passes the ledger check and takes new payments; a store created fresh equals it,
table by table and index by index; the revisions, run one by one, make the same schema."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from blindgate.api.models import INQUIRY_PATH, PAY_PATH
from blindgate.ledger import check_ledger
from blindgate.storage import StoreNotCurrent, StoreTooNew, migrate, open_engine
from blindgate.storage.schema import metadata
from tests.conftest import throwaway_schema
from tests.gateway.harness import build, pay_body, run

PREVIOUS = Path(__file__).resolve().parents[1] / "data" / "previous_release"
OLD_SQLITE = PREVIOUS / "store-0.1.0.sqlite"
OLD_POSTGRESQL_DDL = PREVIOUS / "store-0.1.0-postgresql.sql"
OLD_PAYMENTS = 8  # what make_store.py made: 5 captured (one refunded), 1 failed, 1 cancelled, 1 in process


def old_sqlite_store(folder: Path) -> str:
    copy = folder / "old.db"
    shutil.copy(OLD_SQLITE, copy)
    return f"sqlite:///{copy}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def old_store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store as 0.1.0 left it: its SQLite file, or on PostgreSQL 0.1.0's DDL and the same rows."""
    if request.param == "sqlite":
        return old_sqlite_store(tmp_path)
    url: str = request.getfixturevalue("pg_schema_url")
    _postgresql_store_of_0_1_0(url)
    return url


def _postgresql_store_of_0_1_0(url: str) -> None:
    engine = sa.create_engine(url)  # plain: 0.1.0's DDL and rows, nothing of today's
    source = sa.create_engine(f"sqlite:///{OLD_SQLITE}")
    try:
        with engine.begin() as conn:
            lines = OLD_POSTGRESQL_DDL.read_text().splitlines()
            for statement in "\n".join(line for line in lines if not line.startswith("--")).split(";\n\n"):
                if statement.strip():
                    conn.exec_driver_sql(statement.strip().rstrip(";"))
        old = sa.MetaData()
        old.reflect(engine)
        with source.connect() as reading, engine.begin() as conn:
            for table in old.sorted_tables:  # entries before their lines
                typed = metadata.tables[table.name]  # today's columns: the same, with their types
                rows = [_typed(dict(row)) for row in reading.execute(sa.select(typed)).mappings()]
                if rows:
                    conn.execute(table.insert(), rows)
            for table in ("ledger_entries", "ledger_lines"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
    finally:
        engine.dispose()
        source.dispose()


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """SQLite hands back naive times; the gateway wrote UTC."""
    return {k: _utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@pytest.fixture
def fresh_store(request: pytest.FixtureRequest, tmp_path: Path, old_store: str) -> Iterator[str]:
    """A store created by today's code, on the same backend as ``old_store``."""
    if old_store.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        yield request.getfixturevalue("pg_schema_url_2")


@pytest.fixture
def pg_schema_url_2(postgres_url: str) -> Iterator[str]:
    """A second throw-away schema (``pg_schema_url`` gives one per test)."""
    with throwaway_schema(postgres_url) as url:
        yield url


def test_the_previous_release_store_is_upgraded_checks_and_takes_payments(
    tmp_path: Path, old_store: str
) -> None:
    engine = open_engine(old_store)
    assert migrate.current(engine) is None  # 0.1.0 kept no revision
    with pytest.raises(StoreNotCurrent, match="blindgate db upgrade"):
        migrate.require_current(engine)
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    with engine.connect() as conn:
        report = check_ledger(conn)
        payments = conn.execute(sa.text("SELECT count(*) FROM gw_payments")).scalar_one()
    assert report.ok, report.problems
    assert report.entries > 0 and payments == OLD_PAYMENTS
    engine.dispose()

    # The partners are new (keys, the wallet's book): of the old rows, a failed payment (no
    # sealed customerId for 0.1.0's keys) is read back through today's gateway.
    net = build(tmp_path / "net", database_url=old_store, fee_rates=("0.005", "0.02"))
    failed = run(net.sdk(INQUIRY_PATH, {"paymentRequestId": "old-pay-poor"}))
    assert failed["paymentStatus"] == "FAIL", failed  # a 0.1.0 row reads as it was written
    for n in range(3):
        assert run(net.sdk(PAY_PATH, pay_body(f"new-pay-{n}", 900 + n)))["result"]["resultStatus"] == "S"
    net.gateway_app.state.engine.dispose()

    engine = open_engine(old_store)
    with engine.connect() as conn:
        after = check_ledger(conn)
        payments = conn.execute(sa.text("SELECT count(*) FROM gw_payments")).scalar_one()
    engine.dispose()
    assert after.ok, after.problems
    assert after.entries > report.entries and payments == OLD_PAYMENTS + 3


def test_a_fresh_store_equals_an_upgraded_one(old_store: str, fresh_store: str) -> None:
    upgraded, fresh = migrate.open_store(old_store), migrate.open_store(fresh_store)
    try:
        assert shape(fresh) == shape(upgraded)
    finally:
        upgraded.dispose()
        fresh.dispose()


def test_running_every_revision_on_an_empty_store_makes_todays_schema(tmp_path: Path) -> None:
    """The fast path for an empty store (today's DDL, stamped) and the revisions agree, and both
    equal `blindgate.storage.schema` as Alembic's own comparison sees it (on SQLite: the
    old-store comparison above covers PostgreSQL)."""
    by_revisions = open_engine(f"sqlite:///{tmp_path / 'r.db'}")
    fresh = migrate.open_store(f"sqlite:///{tmp_path / 'f.db'}")
    with by_revisions.connect() as conn:
        migrate._migrate(conn)
        conn.commit()
    try:
        assert migrate.current(by_revisions) == migrate.head()
        assert shape(by_revisions) == shape(fresh)
        with fresh.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        by_revisions.dispose()
        fresh.dispose()


def test_a_store_from_before_the_order_code_index_gets_it(tmp_path: Path) -> None:
    url = old_sqlite_store(tmp_path)
    database = sqlite3.connect(tmp_path / "old.db")
    database.execute("DROP INDEX ix_gw_order_codes_due")  # as a store older than the index is
    database.commit()
    database.close()
    engine = open_engine(url)
    assert "ix_gw_order_codes_due" not in _indexes(engine)
    migrate.upgrade(engine)
    due = _indexes(engine)
    assert due["ix_gw_order_codes_due"] == ["status", "expires_at"]
    with engine.connect() as conn:  # and the sweep's search uses it
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT payment_id FROM gw_order_codes"
            " WHERE status = 'OPEN' AND expires_at < ?",
            ("2030-01-01",),
        ).all()
    engine.dispose()
    assert any("ix_gw_order_codes_due" in str(step) for step in plan), plan


def _indexes(engine: sa.Engine) -> dict[str, list[str | None]]:
    return {i["name"]: i["column_names"] for i in sa.inspect(engine).get_indexes("gw_order_codes")}


def test_a_store_of_a_later_release_is_refused_untouched(tmp_path: Path) -> None:
    engine = migrate.open_store(f"sqlite:///{tmp_path / 'later.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    before = shape(engine)
    with pytest.raises(StoreTooNew, match="later release"):
        migrate.upgrade(engine)
    with pytest.raises(StoreTooNew):
        migrate.require_current(engine)
    assert shape(engine) == before and migrate.current(engine) == "9999"
    engine.dispose()


def test_two_processes_upgrading_at_once_take_turns(tmp_path: Path) -> None:
    """Two engines (as two gateway processes) upgrading one old store: one upgrades, the other
    finds it done; neither fails on a table or an index the other made."""
    import threading

    url = old_sqlite_store(tmp_path)
    engines = [open_engine(url), open_engine(url)]
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def go(engine: sa.Engine) -> None:
        barrier.wait()
        try:
            migrate.upgrade(engine)
        except BaseException as failure:  # reported below
            failures.append(failure)

    threads = [threading.Thread(target=go, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures, failures
    assert all(migrate.current(engine) == migrate.head() for engine in engines)
    for engine in engines:
        engine.dispose()


def shape(engine: sa.Engine) -> dict[str, Any]:
    """Tables, columns, keys, indexes, constraints and triggers as SQLAlchemy's inspector sees them."""
    inspector = sa.inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        tables[name] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], c.get("autoincrement"))
                for c in inspector.get_columns(name)
            ],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign_keys": sorted(
                (tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]))
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (u["name"] or "", tuple(u["column_names"])) for u in inspector.get_unique_constraints(name)
            ),
            "checks": sorted((c["name"] or "", c["sqltext"]) for c in inspector.get_check_constraints(name)),
        }
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            triggers = conn.exec_driver_sql("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'")
        else:
            triggers = conn.exec_driver_sql(
                "SELECT tgname, tgrelid::regclass::text FROM pg_trigger WHERE NOT tgisinternal"
                " AND tgrelid::regclass::text IN ('ledger_entries', 'ledger_lines')"
            )
        tables["(triggers)"] = sorted(tuple(row) for row in triggers)
    return tables


def test_the_upgrade_floors_the_times_older_releases_stored_to_whole_seconds(tmp_path: Path) -> None:
    url = old_sqlite_store(tmp_path)
    floored = [(table, column) for table, columns in _FLOORED.items() for column in columns]
    path = url.removeprefix("sqlite:///")

    def fractions() -> int:
        with sqlite3.connect(path) as raw:
            return sum(
                raw.execute(
                    f"SELECT count(*) FROM {table} "
                    f"WHERE {column} IS NOT NULL AND substr({column}, 21) <> '000000'"
                ).fetchone()[0]
                for table, column in floored
            )

    assert fractions() > 0  # 0.1.0 stored microseconds
    engine = open_engine(url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert check_ledger(conn).ok
        count = conn.execute(sa.text("SELECT count(*) FROM gw_payments")).scalar_one()
    engine.dispose()
    assert fractions() == 0 and count == OLD_PAYMENTS


_FLOORED = {
    "gw_payments": ("created_at", "updated_at", "quote_expires_at"),
    "gw_refunds": ("created_at",),
    "gw_cancel_holds": ("created_at",),
    "gw_notifications": ("next_at", "delivered_at"),
    "gw_order_codes": ("expires_at", "created_at", "updated_at"),
}
