"""The one sentence a failed command ends with, and the checks that make it a clear one.

Every failure of a command ends as one line on stderr, never a traceback: a database that does
not answer names where it was looked for (host and port, or the SQLite file; never the
password), a broker that does not answer names ``kafka.bootstrap_servers``, and anything else
names the exception's class with a PHI-free summary (``logs.describe_exception``), never
``str()`` of a database error, which quotes statements and values.
"""

from __future__ import annotations

import os
import select
import sys
from pathlib import Path

from service.ingest.messages import DatabaseUnavailable
from service.runtime.logs import describe_exception
from service.runtime.settings import Settings

# Longest driver reason quoted (libpq's are one short line; this bounds a surprising one).
_MAX_REASON = 160


class DatabaseUnreachable(Exception):
    """The database named by ``database.url`` cannot be used; the text says where and why."""

    safe_message = True  # built from the URL's host, port or path, never from the driver


def require_sqlite_database(settings: Settings, *, may_create: bool) -> None:
    """Refuse a SQLite database whose folder does not exist, or whose file does not exist
    when the command only uses one (``may_create`` is False).

    Opening a SQLite path creates the file, and the engine its folder: a mistyped path would
    otherwise show an empty database as if it were the real one (`alerts list` printing no
    alerts). Raises DatabaseUnreachable; does nothing for PostgreSQL (its server is tried
    when the command connects) or an in-memory database.
    """
    from service.db.engine import sqlite_file

    path = sqlite_file(settings.database.url)
    if path is None:
        return
    if not path.parent.exists():
        raise DatabaseUnreachable(
            f"database unreachable: the folder of the SQLite database {path} does not exist "
            "(check database.url)"
        )
    if not may_create and not path.exists():
        raise DatabaseUnreachable(
            f"database unreachable: there is no SQLite database at {path} (check database.url; "
            "`labsentinel db upgrade` creates one)"
        )


def sentence(exc: BaseException, command: str, settings: Settings | None) -> str:
    """What ``labsentinel: `` is followed by when ``command`` raised ``exc``. Never raises."""
    try:
        if isinstance(exc, DatabaseUnreachable):
            return str(exc)
        if isinstance(exc, DatabaseUnavailable) and settings is not None:
            # Its text is the class of the driver error, never the driver's message.
            return f"database unreachable: {_where(settings)} stopped answering ({exc})"
        if settings is not None and _is_connect_failure(exc):
            return (
                f"database unreachable: {_where(settings)}: {_connect_reason(exc, settings)} "
                "(check database.url and that the database is running)"
            )
        if settings is not None and _is_broker_unreachable(exc):
            if settings.kafka.security_protocol.startswith("SASL"):
                # aiokafka reports a refused login as a failed connection: say both.
                return (
                    f"Kafka unreachable: no broker at {settings.kafka.bootstrap_servers} "
                    f"answered or accepted the {settings.kafka.sasl_mechanism} login of "
                    f"{settings.kafka.sasl_username!r} (check kafka.bootstrap_servers and "
                    "kafka.sasl_username / kafka.sasl_password)"
                )
            return (
                f"Kafka unreachable: no broker answered at {settings.kafka.bootstrap_servers} "
                "(check kafka.bootstrap_servers and that the broker is running)"
            )
    except Exception:  # a sentence about the sentence would help nobody: fall through
        pass
    return (
        f"{command} failed: {describe_exception(exc)} "
        "(details withheld: they may quote patient data)"
    )


def _is_connect_failure(exc: BaseException) -> bool:
    """The driver could not open a connection: no statement ran, so nothing of a patient's
    can be in the error (SQLAlchemy sets ``statement`` once one runs)."""
    from sqlalchemy.exc import DBAPIError

    return isinstance(exc, DBAPIError) and exc.statement is None


def _is_broker_unreachable(exc: BaseException) -> bool:
    from aiokafka.errors import KafkaConnectionError

    return isinstance(exc, KafkaConnectionError)


def _where(settings: Settings) -> str:
    """Where the database was looked for, from the URL's parts: never its password."""
    from sqlalchemy.engine import make_url

    from service.db.engine import normalise_url

    url = make_url(normalise_url(settings.database.url))
    if url.get_backend_name() == "sqlite":
        return f"the SQLite database {Path(url.database or ':memory:').absolute()}"
    place = f"{url.host}:{url.port or 5432}" if url.host else "the local socket"
    return f"PostgreSQL at {place} (database {url.database or '(default)'})"


def _connect_reason(exc: BaseException, settings: Settings) -> str:
    """The driver's reason, e.g. "Connection refused": libpq's last clause, password masked."""
    from sqlalchemy.engine import make_url

    text = str(getattr(exc, "orig", None) or "").strip()
    first = text.splitlines()[0] if text else ""
    reason = first.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
    password = make_url(settings.database.url).password
    if password:
        reason = reason.replace(str(password), "***")
    return reason[:_MAX_REASON] or type(exc).__name__


def stdout_closed() -> bool:
    """Whether the reader of our stdout has gone (``| head`` done): a pipe whose read end is
    closed polls as an error. False when that cannot be told (no poll, no file descriptor)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):
        return False


def discard_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's last flush of what is still
    buffered does not fail again (and print "Exception ignored") on the way out."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass
