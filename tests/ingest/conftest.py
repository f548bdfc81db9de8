"""Fixtures of the pipeline tests: a clock the test sets, a pipeline on the test's database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from service.bootstrap import build_app
from service.ingest.pipeline import Pipeline
from service.runtime.clock import FixedClock
from service.runtime.settings import load_settings

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the iron dose in every case


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def pipeline(database_url: str, clock: FixedClock) -> Iterator[Pipeline]:
    settings = load_settings(
        overrides={"database": {"url": database_url}, "routing": {"default_channels": []}}
    )
    app = build_app(settings, clock=clock, transports={})
    yield app.pipeline
    app.close()
