"""Real infrastructure behind session fixtures: Tansu (embedded Kafka) and PostgreSQL.

Each test gets its own topics and its own PostgreSQL database. PostgreSQL tests skip when the
server is down on a developer's machine, but fail in CI (CI=true), where it must be there.

The ``postgres`` and ``kafka`` markers are derived from the fixtures a test uses, so that they
stay true: ``-m "not postgres"`` really runs without the database server, ``-m "not kafka"``
without a broker. (``slow`` is set by hand, per module or per test: it is a judgement.)
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from service.tools.broker import EmbeddedBroker

PG_ADMIN_URL = os.environ.get(
    "LABSENTINEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


POSTGRES_FIXTURES = {"pg_server", "pg_url", "private_pg", "private_pg_url"}
KAFKA_FIXTURES = {"broker", "proxied_broker"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        if fixtures & POSTGRES_FIXTURES or on_postgres:
            item.add_marker(pytest.mark.postgres)
        if fixtures & KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as running:
        yield running


def _pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server() -> str:
    if not _pg_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required in CI and is not reachable at {PG_ADMIN_URL}")
        pytest.skip("PostgreSQL not reachable (set LABSENTINEL_TEST_PG_URL)")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards."""
    name = f"labsentinel_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = pg_server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'labsentinel.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test on both databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'labsentinel.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
