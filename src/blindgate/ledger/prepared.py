"""Hot-path statements: written once in SQLAlchemy Core, compiled once, run on the driver's cursor.

``Connection.execute`` of a Core statement costs about 40 us of CPU per call here (cache key,
compiled-cache look-up, parameter construction, result set-up), and even
``Connection.exec_driver_sql`` about 50 us (an execution context and a result object per
call): more than SQLite takes to run the statement, which takes about 8 us on the driver's
own cursor. A payment sends seven such statements, so that was a sixth of the gateway's CPU
per payment. `Prepared` keeps what SQLAlchemy is for — the statement written in Core, compiled
per dialect with its own quoting and placeholders, each parameter through the dialect's bind
processor (a datetime becomes SQLite's text form), each returned column through its result
processor (a date comes back a ``date`` on SQLite too) — and drops the per-call part: it
compiles once per dialect and set of parameter names and runs the SQL on a cursor of the
connection's own driver connection (`run_driver_sql`), inside the caller's transaction.

What `run_driver_sql` keeps of Core's execution: the engine's ``before_cursor_execute`` and
``after_cursor_execute`` events fire (the SQLite writers' turns in `blindgate.storage.engine`
hook on them, and so do tests that count round trips), and a driver error is raised as
SQLAlchemy's (`sqlalchemy.exc.IntegrityError` for a duplicate key, which idempotency relies
on), the connection invalidated when the driver says it is gone, as Core does.

A `Rider` is a caller's write that travels in another module's statement: the gateway's payment
INSERT in the ledger's pending entry, its guarded settle UPDATE in the read of that entry. On
PostgreSQL each statement is a round trip and psycopg's handling (~60 us of the gateway's CPU,
more with the event loop busy beside it), so a rider goes in as a CTE of the statement it rides
in; elsewhere (SQLite: no round trip) it runs on its own just before. Its bind names are its own
(`own_binds`, its parameters named alike by `own_values`), so it can never take a value meant
for the statement that carries it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa


@dataclass(frozen=True)
class _Form:
    """One compiled form: the SQL text and how to turn named parameters into the driver's."""

    sql: str
    names: tuple[str, ...]  # bind names, in placeholder order on a positional dialect
    positional: bool
    processors: tuple[Callable[[Any], Any] | None, ...]
    fixed: Mapping[str, Any]  # literal binds of the statement itself (``status == 'X'``)
    results: tuple[Callable[[Any], Any] | None, ...]  # per returned column

    def parameters(self, given: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = [
            (process(given[name]) if process else given[name]) if name in given else self.fixed[name]
            for name, process in zip(self.names, self.processors, strict=True)
        ]
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            process(value) if process else value for value, process in zip(raw, self.results, strict=True)
        )


class Prepared:
    """A Core statement run through `exec_driver_sql` with its compiled form cached."""

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._forms: dict[tuple[str, tuple[str, ...]], _Form] = {}

    def execute(self, conn: sa.Connection, parameters: Mapping[str, Any]) -> int:
        """Run it; how many rows it changed (use `one_or_none` to read a row)."""
        cursor = self._run(conn, parameters)[1]
        try:
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def one_or_none(self, conn: sa.Connection, parameters: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run it and read its one row (or none), typed as Core would give it."""
        form, cursor = self._run(conn, parameters)
        try:
            rows = cursor.fetchmany(2)  # a second fetch also runs a RETURNING statement to its end
        finally:
            cursor.close()
        if len(rows) > 1:
            raise sa.exc.MultipleResultsFound("a prepared statement returned more than one row")
        return form.row(rows[0]) if rows else None

    def cte(self, name: str, *, returning: bool = False) -> sa.CTE:
        """This write as a CTE named ``name`` of another statement (`Rider`); ``returning``: it
        gives a row for each row it changed, for the carrier to test."""
        statement: Any = self.statement
        return (statement.returning(sa.literal_column("1")) if returning else statement).cte(name)

    def _run(self, conn: sa.Connection, parameters: Mapping[str, Any]) -> tuple[_Form, Any]:
        key = (conn.dialect.name, tuple(parameters))
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = _compile(self.statement, conn.dialect, key[1])
        return form, run_driver_sql(conn, form.sql, form.parameters(parameters))


@dataclass(frozen=True)
class Rider:
    """A write (an INSERT, or an UPDATE) with its parameters, to be carried in another statement.

    Its statement's bind names must not be the carrier's (`own_binds`); the carrier checks."""

    statement: Prepared
    parameters: Mapping[str, Any]

    def run(self, conn: sa.Connection) -> int:
        """On its own: how many rows it changed."""
        return self.statement.execute(conn, self.parameters)

    def beside(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The carrier's ``parameters`` and the rider's, which must not share a name."""
        shared = self.parameters.keys() & parameters.keys()
        if shared:
            raise ValueError(f"a rider's parameters must be its own; shared: {sorted(shared)}")
        return {**parameters, **self.parameters}


def own_binds(table: sa.Table, columns: Iterable[str], prefix: str) -> dict[str, sa.BindParameter[Any]]:
    """Values for an INSERT or UPDATE of ``columns``, each bound as ``prefix`` + its name, typed
    as its column; a prefix gives a statement that rides in another (`Rider`) names of its own."""
    return {name: sa.bindparam(prefix + name, type_=table.c[name].type) for name in columns}


def own_values(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The parameters of a statement made with `own_binds` and the same ``prefix``: ``values``,
    by column name, each named ``prefix`` + its column."""
    return {prefix + name: value for name, value in values.items()}


def run_driver_sql(conn: sa.Connection, sql: str, parameters: Any, *, many: bool = False) -> Any:
    """Run ``sql`` (the driver's SQL and parameter style) on a new cursor of ``conn``'s driver
    connection, in its transaction; the cursor (the caller closes it). Module docstring: what of
    Core's execution this keeps."""
    dbapi_connection = conn.connection.dbapi_connection
    assert dbapi_connection is not None  # a connection in use is never detached
    cursor = dbapi_connection.cursor()
    conn.dispatch.before_cursor_execute(conn, cursor, sql, parameters, None, many)
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        gone = conn.dialect.is_disconnect(exc, dbapi_connection, cursor)
        if gone:
            conn.invalidate(exc)
        wrapped = sa.exc.DBAPIError.instance(
            sql, parameters, exc, conn.dialect.loaded_dbapi.Error,
            connection_invalidated=gone, dialect=conn.dialect, ismulti=many,
        )  # fmt: skip
        raise wrapped from exc
    conn.dispatch.after_cursor_execute(conn, cursor, sql, parameters, None, many)
    return cursor


def _compile(statement: sa.Executable, dialect: sa.Dialect, names: tuple[str, ...]) -> _Form:
    compiled = statement.compile(dialect=dialect, column_keys=list(names))  # type: ignore[attr-defined]
    binds = compiled.binds
    order = tuple(compiled.positiontup) if dialect.positional else tuple(binds)
    processors = tuple(binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order)
    fixed = {}
    for name, process in zip(order, processors, strict=True):
        bind = binds[name]
        if name not in names:
            # Only the statement's own literals (anonymous, unique binds) may be left out; a
            # column's bind would silently take NULL where Core would apply its default.
            if not bind.unique or bind.callable is not None:
                raise KeyError(f"statement needs parameter {name!r}")
            fixed[name] = process(bind.value) if process else bind.value
    columns = getattr(statement, "exported_columns", ())
    results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    return _Form(compiled.string, order, dialect.positional, processors, fixed, results)
