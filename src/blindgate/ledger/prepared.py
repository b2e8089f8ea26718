"""Hot-path statements: written once in SQLAlchemy Core, compiled once, run as the driver's SQL.

``Connection.execute`` of a Core statement costs about 40 us of CPU per call here (cache key,
compiled-cache look-up, parameter construction, result set-up): more than SQLite takes to run
the statement. A payment sends five such statements, so that was a tenth of the gateway's
CPU per payment. `Prepared` keeps what SQLAlchemy is for (the statement written in Core,
compiled per dialect with its own quoting and placeholders, each parameter through the
dialect's bind processor: a datetime becomes SQLite's text form) and drops the per-call part:
it compiles once per dialect and set of parameter names, and runs the SQL with
``Connection.exec_driver_sql``, inside the caller's transaction and through the engine's
events (the SQLite writers' turns in `blindgate.storage.engine` hook on them). A row it
returns goes through each column type's result processor, as Core's would: a date comes back
a ``date`` on SQLite too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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

    def execute(self, conn: sa.Connection, parameters: Mapping[str, Any]) -> sa.CursorResult[Any]:
        """Run it; the result's rows are the driver's (use `one_or_none` to read a row)."""
        return self._run(conn, parameters)[1]

    def one_or_none(self, conn: sa.Connection, parameters: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """Run it and read its one row (or none), typed as Core would give it."""
        form, result = self._run(conn, parameters)
        raw = result.one_or_none()
        return None if raw is None else form.row(raw)

    def _run(self, conn: sa.Connection, parameters: Mapping[str, Any]) -> tuple[_Form, sa.CursorResult[Any]]:
        key = (conn.dialect.name, tuple(parameters))
        form = self._forms.get(key)
        if form is None:
            form = self._forms[key] = _compile(self.statement, conn.dialect, key[1])
        return form, conn.exec_driver_sql(form.sql, form.parameters(parameters))


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
