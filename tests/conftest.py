"""Real infrastructure behind session fixtures: the brokers (Tansu and Apache Kafka) and
PostgreSQL.

Each test gets its own topics and its own PostgreSQL database. PostgreSQL tests skip when the
server is down on a developer's machine, but fail in CI (CI=true), where it must be there.

Every test that takes the ``broker`` or ``proxied_broker`` fixture runs once per broker of
``--broker`` (``tansu``, ``kafka`` or ``both``, the default): Tansu is the embedded default and
the fast lane's broker, Apache Kafka (``service.tools.kafka``, started with ``java`` from jars
Maven resolves) is what hospitals run. Apache Kafka skips where java or mvn are missing, except
in CI, where it fails. ``@pytest.mark.tansu_only("why")`` keeps a test on Tansu alone. The
Apache Kafka variants count as ``slow``: the fast lane (``-m "not slow"``) stays on Tansu.

The ``postgres`` and ``kafka`` markers are derived from the fixtures a test uses, so that they
stay true: ``-m "not postgres"`` really runs without the database server, ``-m "not kafka"``
without a broker. (``slow`` is set by hand, per module or per test: it is a judgement; the one
exception is the Apache Kafka variants above.)
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from service.tools.broker import EmbeddedBroker
from service.tools.kafka import ApacheKafka

PG_ADMIN_URL = os.environ.get(
    "LABSENTINEL_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


# The API story on SQLite (``story``): the API, web, CLI and security tests share it.
pytest_plugins = ["tests.api.story"]

POSTGRES_FIXTURES = {"pg_server", "pg_url", "private_pg", "private_pg_url"}
KAFKA_FIXTURES = {"broker", "proxied_broker"}
BROKER_KINDS = ("tansu", "kafka")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker",
        choices=(*BROKER_KINDS, "both"),
        default=os.environ.get("LABSENTINEL_TEST_BROKER", "both"),
        help="which Kafka broker the broker tests run against (default: both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tansu_only(reason): run this broker test against Tansu only"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    chosen = metafunc.config.getoption("--broker")
    kinds = list(BROKER_KINDS) if chosen == "both" else [chosen]
    if metafunc.definition.get_closest_marker("tansu_only") is not None:
        kinds = [kind for kind in kinds if kind == "tansu"]
    for name in sorted(KAFKA_FIXTURES & set(metafunc.fixturenames)):
        metafunc.parametrize(name, kinds, indirect=True, scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("database_url") == "postgresql"
        if fixtures & POSTGRES_FIXTURES or on_postgres:
            item.add_marker(pytest.mark.postgres)
        if fixtures & KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)
        if callspec is not None and "kafka" in (
            callspec.params.get(name) for name in KAFKA_FIXTURES
        ):
            # Tansu is the fast lane's broker: a JVM is started only for the whole suite.
            item.add_marker(pytest.mark.slow)


def require_apache_kafka_tools() -> None:
    """Skip (fail in CI) when the JVM or Maven that start Apache Kafka are missing."""
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Apache Kafka is required in CI and {', '.join(missing)} is missing")
        pytest.skip(f"Apache Kafka needs {', '.join(missing)}")


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker | ApacheKafka]:
    kind = getattr(request, "param", "tansu")
    if kind == "kafka":
        require_apache_kafka_tools()
        with ApacheKafka() as kafka:
            yield kafka
        return
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
