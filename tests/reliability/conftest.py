"""Private infrastructure for the fault suite: nothing here touches the shared services.

- ``private_pg``: a PostgreSQL cluster of our own (temp dir, free port) that the outage test
  may stop; every test gets its own database in it. The shared server at :5432 stays untouched.
- ``proxied_broker``: Tansu or Apache Kafka (see ``--broker``) advertising a TCP proxy's
  address, so the broker-cut test can cut every Kafka connection of the daemon.
Both skip the suite when their binaries are missing (developer machines), except in CI.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from service.tools.soak import PrivatePostgres, ProxiedBroker
from tests.conftest import require_apache_kafka_tools


def _unavailable(what: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    try:
        pg = PrivatePostgres().init()
    except (RuntimeError, OSError) as exc:
        _unavailable(f"a private PostgreSQL cluster ({exc})")
    try:
        yield pg
    finally:
        if not pg.running():
            pg.start()  # a test stopped it and failed before restarting it
        pg.destroy()


@pytest.fixture
def private_pg_url(private_pg: PrivatePostgres) -> str:
    return private_pg.create_database(f"reliability_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="session")
def proxied_broker(request: pytest.FixtureRequest) -> Iterator[ProxiedBroker]:
    kind = getattr(request, "param", "tansu")
    if kind == "kafka":
        require_apache_kafka_tools()
    broker = ProxiedBroker(kind)
    try:
        broker.start()
    except (RuntimeError, OSError) as exc:
        _unavailable(f"the {kind} broker ({exc})")
    try:
        yield broker
    finally:
        broker.stop()
