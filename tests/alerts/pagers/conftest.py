from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.pagers.servers import HttpServer, SmtpServer


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    with HttpServer() as server:
        yield server


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server
