"""What the routes, the sign-in code and the views need of the application: ``ApiContext``.

The daemon component (``service.api.server``) and the tests build one ``ApiContext`` from the
objects ``service.bootstrap`` wired; ``create_app`` (``service.api.app``) serves it. Routes
and views import this module, never the app factory, so the app sits above its routers.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy.engine import Engine

from service.db.engine import database_reachable
from service.ingest.pipeline import Pipeline
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock, WallClock
from service.runtime.settings import Settings
from service.runtime.signing import Signer

# Separates web-session signatures from ack-link signatures made with the same secret.
SESSION_SALT = "labsentinel web session"


@dataclass
class Readiness:
    """What /readyz reports besides the database: the daemon's consumer and dispatcher.

    ``consumer`` is a ``service.ingest.consumer.ConsumerState`` and ``dispatcher`` a ``Dispatcher``
    (anything with ``running``); ``None`` means "not part of this process" and is not ready.
    """

    consumer: Any = None
    dispatcher: Any = None

    def checks(self) -> dict[str, bool]:
        """``group``: the consumer joined its group, with or without partitions. A replica
        beyond the partition count owns none and is a healthy standby: requiring a partition
        would keep it unready forever (and a rollout waiting on it stuck)."""
        consumer = self.consumer
        return {
            "broker": bool(consumer is not None and consumer.connected),
            "group": bool(consumer is not None and getattr(consumer, "joined", False)),
            "dispatcher": bool(self.dispatcher is not None and self.dispatcher.running),
        }


@dataclass
class ApiContext:
    """The objects every route needs; ``pipeline`` only where dead letters are reprocessed."""

    settings: Settings
    engine: Engine
    clinical: Clinical
    pipeline: Pipeline | None = None
    readiness: Readiness = field(default_factory=Readiness)
    clock: Clock = field(default_factory=WallClock)
    # Signs the web session cookie. The ack secret when configured (sessions survive a
    # restart and work across instances); random otherwise (sessions end with the process).
    session_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    session_signer: Signer = field(init=False, repr=False)

    def __post_init__(self) -> None:
        ack_secret = self.settings.api.ack_secret
        if ack_secret is not None:
            self.session_secret = ack_secret.get_secret_value().encode()
        self.session_signer = Signer(self.session_secret, salt=SESSION_SALT)

    def database_ok(self) -> bool:
        """``SELECT 1`` answers; blocks for at most the engine's connect timeout."""
        return database_reachable(self.engine)


def context_of(request: Request) -> ApiContext:
    """The context ``create_app`` stored on the application serving ``request``."""
    context: ApiContext = request.app.state.ctx
    return context
