"""`Prepared` statements store and read exactly what Core's own execution would, on both stores."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from blindgate.ledger.prepared import Prepared

metadata = sa.MetaData()
things = sa.Table(
    "prepared_things",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(20), nullable=False, unique=True),
    sa.Column("state", sa.String(10), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("count", sa.Integer, nullable=False, default=0),
)
AT = datetime(2026, 11, 24, 16, 0, 1, 250_000, tzinfo=UTC)
DAY = date(2026, 11, 25)

INSERT = Prepared(things.insert().returning(things.c.id, things.c.day, things.c.at))
SETTLE = Prepared(things.update().where(things.c.name == sa.bindparam("which"), things.c.state == "OPEN"))
READ = Prepared(
    sa.select(things.c.day, things.c.at, things.c.count).where(things.c.name == sa.bindparam("which"))
)


@pytest.fixture
def store(engine: sa.Engine) -> sa.Engine:
    metadata.create_all(engine)
    return engine


def row(name: str) -> dict[str, object]:
    return {"name": name, "state": "OPEN", "day": DAY, "at": AT, "count": 3}


def test_rows_are_typed_as_core_types_them(store: sa.Engine) -> None:
    with store.begin() as conn:
        written = INSERT.one_or_none(conn, row("a"))
        core = conn.execute(sa.select(things.c.day, things.c.at).where(things.c.name == "a")).one()
    assert written is not None
    _, day, at = written
    assert (day, at) == tuple(core)
    assert isinstance(day, date) and day == DAY
    with store.connect() as conn:
        assert READ.one_or_none(conn, {"which": "a"}) == (core.day, core.at, 3)
        assert READ.one_or_none(conn, {"which": "nobody"}) is None


def test_stores_the_same_values_as_core(store: sa.Engine) -> None:
    with store.begin() as conn:
        INSERT.execute(conn, row("prepared"))
        conn.execute(things.insert(), row("core"))
        stored = conn.exec_driver_sql("SELECT name, day, at FROM prepared_things ORDER BY name").all()
    (_, core_day, core_at), (_, prepared_day, prepared_at) = stored
    assert (prepared_day, prepared_at) == (core_day, core_at)  # the driver's own values


def test_literals_of_the_statement_stay_bound(store: sa.Engine) -> None:
    with store.begin() as conn:
        INSERT.execute(conn, row("a"))
        changes = {"which": "a", "state": "SETTLED", "at": AT}
        assert SETTLE.execute(conn, changes) == 1
        assert SETTLE.execute(conn, changes) == 0  # no longer OPEN


def test_a_missing_column_is_refused_not_stored_as_null(store: sa.Engine) -> None:
    missing = {key: value for key, value in row("b").items() if key != "count"}
    with pytest.raises(KeyError, match="count"), store.begin() as conn:
        INSERT.execute(conn, missing)
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(things)).scalar_one() == 0


def test_a_unique_violation_is_sqlalchemys_integrity_error(store: sa.Engine) -> None:
    with store.begin() as conn:
        INSERT.execute(conn, row("a"))
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        INSERT.execute(conn, row("a"))


def test_the_engine_s_cursor_events_see_each_statement(store: sa.Engine) -> None:
    """The SQLite writers' turns and the round-trip counts hook on them."""
    seen: list[tuple[str, str]] = []
    before = lambda _c, _cur, sql, *_: seen.append(("before", sql.split()[0]))  # noqa: E731
    after = lambda _c, _cur, sql, *_: seen.append(("after", sql.split()[0]))  # noqa: E731
    sa.event.listen(store, "before_cursor_execute", before)
    sa.event.listen(store, "after_cursor_execute", after)
    try:
        with store.begin() as conn:
            INSERT.execute(conn, row("a"))
    finally:
        sa.event.remove(store, "before_cursor_execute", before)
        sa.event.remove(store, "after_cursor_execute", after)
    assert seen == [("before", "INSERT"), ("after", "INSERT")]


def test_a_failed_statement_leaves_the_transaction_to_roll_back_whole(store: sa.Engine) -> None:
    with pytest.raises(sa.exc.IntegrityError), store.begin() as conn:
        INSERT.execute(conn, row("a"))
        INSERT.execute(conn, row("a"))
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(things)).scalar_one() == 0
