"""INSERT ... ON CONFLICT, written once for PostgreSQL and SQLite.

Both dialects spell the clause alike (``on_conflict_do_nothing`` / ``on_conflict_do_update``
with ``excluded``), but SQLAlchemy gives each its own ``insert``. A conflict rule is written
once as a ``Conflict`` and turned into a statement for either dialect here: parameter-list
statements (executemany) and, on PostgreSQL, the ``INSERT ... SELECT`` that moves COPY-staged
rows into their table (``service.db.staging``) apply the same rule.

Nothing here touches a database: the functions build statements and never raise for a
table or rule that SQLAlchemy accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.dml import ReturningInsert

Columns = ReadOnlyColumnCollection[str, Any]
# ``(excluded, table columns) -> values``: ``excluded`` is the row that was refused.
Update = Callable[[Columns, Columns], Mapping[str, Any]]
Where = Callable[[Columns, Columns], ColumnElement[bool]]
Insert = postgresql.Insert | sqlite.Insert


@dataclass(frozen=True)
class Conflict:
    """What to do when a row's ``key`` is already in the table.

    Without ``update``: DO NOTHING. With it: DO UPDATE SET ``update(excluded, current)``,
    only where ``where(excluded, current)`` holds when given.
    """

    key: tuple[str, ...]
    update: Update | None = None
    where: Where | None = None


def insert(table: Table, dialect: str) -> Insert:
    """The ``INSERT`` construct of ``dialect`` ("postgresql", else SQLite's)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_on_conflict(
    table: Table,
    dialect: str,
    conflict: Conflict,
    *,
    returning: Sequence[str] = (),
    source: Select[Any] | None = None,
) -> Insert | ReturningInsert[Any]:
    """``INSERT INTO table`` (values bound per row, or ``SELECT``-ed from ``source``) with
    the ``conflict`` rule and an optional ``RETURNING`` of the named columns."""
    statement = insert(table, dialect)
    if source is not None:
        statement = statement.from_select([c.name for c in table.c], source)
    if conflict.update is None:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict.key))
    else:
        new, current = statement.excluded, table.c
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict.key),
            set_=dict(conflict.update(new, current)),
            where=conflict.where(new, current) if conflict.where is not None else None,
        )
    if returning:
        return statement.returning(*(table.c[name] for name in returning))
    return statement


def postgresql_text(statement: Insert | ReturningInsert[Any]) -> str:
    """The statement as PostgreSQL SQL text with its constants inline, for a driver cursor
    (the COPY staging path runs on psycopg's cursor, outside SQLAlchemy's execution)."""
    compiled = statement.compile(
        dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
    )
    return str(compiled)
