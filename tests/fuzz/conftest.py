"""Shared pieces of the bad-input suite: an app on each database and a feed to corrupt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.bootstrap import App, build_app
from service.runtime.clock import MessageClock
from service.runtime.settings import load_settings
from service.tools.feedgen import Feed, generate_feed

START = datetime(2025, 1, 6, tzinfo=UTC)


def make_app(database_url: str, config: Path | None = None) -> App:
    settings = load_settings(
        config, {"database": {"url": database_url}, "routing": {"default_channels": []}}
    )
    return build_app(settings, clock=MessageClock())


@pytest.fixture
def app(database_url: str) -> Iterator[App]:
    """The application on SQLite and on PostgreSQL (the one that refuses NUL in text)."""
    built = make_app(database_url)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="session")
def feed() -> Feed:
    return generate_feed(messages=300, patients=80, planted=3, seed=21, start=START)
