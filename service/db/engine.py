"""Engine creation and the transient-error test the consumer uses to pause on outages.

Every engine is created with ``hide_parameters=True``: SQLAlchemy otherwise puts the bound
values of a failed statement into the exception text (``[parameters: ...]``) and into echo
logging, and those values are patient identifiers, names and raw HL7.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import ARRAY, ColumnElement, String, any_, bindparam, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Mapped
from sqlmodel import create_engine

from service.db import staging


def normalise_url(url: str) -> str:
    """Plain ``postgresql://`` and ``postgres://`` URLs use psycopg 3 (the driver installed)."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(url: str) -> bool:
    return make_url(normalise_url(url)).get_backend_name() == "sqlite"


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL, absolute; None for another database, an in-memory one or a
    ``file:`` URI."""
    if not is_sqlite(url):
        return None
    database = make_url(normalise_url(url)).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).absolute()


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> Engine:
    """Create the engine (statement parameters hidden from errors and logs).

    Raises sqlalchemy.exc.ArgumentError for an unusable URL.
    """
    url = normalise_url(url)
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            hide_parameters=True,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 5},
    )
    event.listen(engine, "connect", _postgresql_session)
    staging.install(engine)
    return engine


def _postgresql_session(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # psycopg prepares a statement after a few executions, and PostgreSQL may then keep a
    # generic plan made while a table was still empty: the batch's patient lookup became a
    # sequential scan that took 36 ms a batch (measured) once the table had 10,000 rows.
    # Planning each execution for its parameters costs microseconds per statement.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the API read while the pipeline writes; synchronous=NORMAL is durable across
    # process crashes in WAL mode (only an OS crash may lose the last commits).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def one_of_ids(column: ColumnElement[str] | Mapped[str], dialect: str) -> ColumnElement[bool]:
    """``column`` equals one of the list bound as ``ids``.

    PostgreSQL gets one array parameter: an IN list of a batch's hundreds of ids is rendered
    and type-cast per id on every call.
    """
    if dialect == "postgresql":
        return column == any_(bindparam("ids", type_=ARRAY(String)))
    return column.in_(bindparam("ids", expanding=True))


def database_reachable(engine: Engine) -> bool:
    """Whether ``SELECT 1`` works now (readiness, and the consumer waiting out an outage)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


def is_outage(exc: BaseException) -> bool:
    """True for errors that mean "the database is not reachable now", not "this data is bad".

    The consumer pauses and retries on these; anything else is the message's fault and it is
    dead-lettered.
    """
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
