"""PostgreSQL batch writes: COPY a batch's rows into a session-local staging table, then one
``INSERT ... SELECT`` moves them into the real table with its conflict rule.

Why not parameters: psycopg formats list parameters (the ``unnest`` statements this replaced)
in Python, and that cost more than the database work itself (profile at 5,000 msg/s: 28 % of
the daemon's time). COPY rows are encoded by psycopg's C extension, in the binary format: the
text format renders each time as text, 5.4 µs a result row against 1.1 µs (measured). The move
applies the table's conflict rule, built by ``service.db.dialect`` from the same ``Conflict``
as the parameter-list statements.

Each pooled connection creates its TEMP tables once, when it connects (``install``). They are
``ON COMMIT DELETE ROWS``: nothing outlives the transaction that staged it, and a rollback
discards the staged rows with everything else. They carry no constraints: the real table's
checks (a too-long string, a NOT NULL) apply in the ``INSERT ... SELECT``, so a bad row still
fails its batch, which the pipeline then retries message by message.

Times are staged as ``timestamptz`` (a naive time is refused, as ``UTCDateTime`` refuses it)
and stored as ``timezone('UTC', …)`` (``AT TIME ZONE 'UTC'``): the tables keep naive UTC
(``service.db.types``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    Float,
    Integer,
    Select,
    String,
    Table,
    column,
    event,
    func,
    select,
)
from sqlalchemy import table as sql_table
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session

from service.db.models import LabResultRow, ProcessedMessage
from service.db.types import UTCDateTime

STAGED_TABLES: tuple[Table, ...] = (
    LabResultRow.__table__,  # type: ignore[attr-defined]
    ProcessedMessage.__table__,  # type: ignore[attr-defined]
)


def staging_name(table: Table) -> str:
    return f"staged_{table.name}"


def staged_columns(table: Table) -> list[str]:
    """The columns a batch supplies, in table order: all of them (no staged table has a
    surrogate key)."""
    return [c.name for c in table.c]


def _column_type(table: Table, name: str) -> str:
    """The staging column's PostgreSQL type (also the COPY's binary type)."""
    column_type = table.c[name].type
    if isinstance(column_type, UTCDateTime | DateTime):
        return "timestamptz"
    if isinstance(column_type, TypeDecorator):  # sqlmodel's AutoString is a VARCHAR
        column_type = column_type.impl_instance
    if isinstance(column_type, String):
        return "text"
    if isinstance(column_type, Float):
        return "float8"
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, Integer):
        return "int8"
    raise TypeError(f"no staging type for {table.name}.{name} ({column_type!r})")


def _is_time(table: Table, name: str) -> bool:
    return _column_type(table, name) == "timestamptz"


@functools.cache
def _copy_types(table: Table) -> list[str]:
    return [_column_type(table, name) for name in staged_columns(table)]


def create_statement(table: Table) -> str:
    columns = ", ".join(f"{name} {_column_type(table, name)}" for name in staged_columns(table))
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {staging_name(table)} ({columns}) ON COMMIT DELETE ROWS"
    )


def install(engine: Engine) -> None:
    """Give every new connection of ``engine`` (PostgreSQL) its staging tables."""
    event.listen(engine, "connect", _create_tables)


def _create_tables(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        for table in STAGED_TABLES:
            cursor.execute(create_statement(table))
    dbapi_connection.commit()


@functools.cache
def _copy_statement(table: Table) -> str:
    columns = ", ".join(staged_columns(table))
    return f"COPY {staging_name(table)} ({columns}) FROM STDIN (FORMAT BINARY)"


def staged_source(table: Table) -> Select[Any]:
    """``SELECT`` of ``table``'s staging table, in column order, times turned back into the
    naive UTC the tables keep: the source of the ``INSERT ... SELECT`` that moves a batch."""
    staged = sql_table(staging_name(table), *(column(name) for name in staged_columns(table)))
    return select(
        *(
            func.timezone("UTC", staged.c[name]) if _is_time(table, name) else staged.c[name]
            for name in staged_columns(table)
        )
    )


def write(
    session: Session,
    table: Table,
    rows: Sequence[Sequence[Any]],
    move: str,
    returning: bool = False,
) -> list[tuple[Any, ...]]:
    """Stage ``rows`` (values in ``staged_columns`` order) and run ``move``: the SQL text of
    the ``INSERT ... SELECT`` from ``staged_source(table)`` with the table's conflict rule.

    Returns the RETURNING rows when ``returning`` (else an empty list). Runs in the session's
    transaction and never commits; blocks on the database.
    """
    if not rows:
        return []
    driver = session.connection().connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        with cursor.copy(_copy_statement(table)) as copy:
            copy.set_types(_copy_types(table))
            for row in rows:
                copy.write_row(row)
        cursor.execute(move)  # type: ignore[arg-type]
        return cursor.fetchall() if returning else []
