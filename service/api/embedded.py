"""What the daemon's HTTP components share: uvicorn without its own signal handling, and the
context built from the application the daemon wires.

uvicorn (>= 0.29) swaps the process's handlers in ``capture_signals`` while it serves from
the main thread, which would take SIGTERM away from the daemon's orderly shutdown: the daemon
owns SIGTERM/SIGINT and sets ``stop`` instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

import uvicorn
from sqlalchemy.engine import Engine

from service.api.context import ApiContext, Readiness
from service.ingest.pipeline import Pipeline
from service.runtime.clinical import Clinical
from service.runtime.settings import Settings


class EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handling (see the module docstring)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServedApp(Protocol):
    """What the HTTP components serve: the application ``service.bootstrap.build_app`` wires."""

    settings: Settings
    engine: Engine
    clinical: Clinical
    pipeline: Pipeline


def served_context(app: ServedApp, readiness: Readiness) -> ApiContext:
    """The routes' context for the daemon's ``app``; ``readiness`` holds what /readyz reports
    besides the database (the consumer's state and the dispatcher)."""
    return ApiContext(
        settings=app.settings,
        engine=app.engine,
        clinical=app.clinical,
        pipeline=app.pipeline,
        readiness=readiness,
    )
