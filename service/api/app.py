"""The application factory: one ``ApiContext`` (what the routes need) → a FastAPI app.

``create_app`` does no I/O; the daemon component (``service.api.server``) and the tests build
the same app from the same objects, the tests with a SQLite or PostgreSQL engine of their own.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.engine import Engine
from starlette.responses import Response

from service.db.engine import database_reachable
from service.ingest.pipeline import Pipeline
from service.runtime import metrics
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock, WallClock
from service.runtime.settings import Settings

HERE = Path(__file__).resolve().parent


@dataclass
class Readiness:
    """What /readyz reports besides the database: the daemon's consumer and dispatcher.

    ``consumer`` is a ``service.ingest.consumer.ConsumerState`` and ``dispatcher`` a ``Dispatcher``
    (anything with ``running``); ``None`` means "not part of this process" and is not ready.
    """

    consumer: Any = None
    dispatcher: Any = None

    def checks(self) -> dict[str, bool]:
        consumer = self.consumer
        return {
            "broker": bool(consumer is not None and consumer.connected),
            "partitions": bool(consumer is not None and consumer.assigned > 0),
            "dispatcher": bool(self.dispatcher is not None and self.dispatcher.running),
        }


@dataclass
class ApiContext:
    settings: Settings
    engine: Engine
    clinical: Clinical
    pipeline: Pipeline | None = None
    readiness: Readiness = field(default_factory=Readiness)
    clock: Clock = field(default_factory=WallClock)
    # Signs the web session cookie. From the ack secret when configured (sessions survive a
    # restart and work across instances); random otherwise.
    session_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def database_ok(self) -> bool:
        return database_reachable(self.engine)


def create_app(context: ApiContext) -> FastAPI:
    from service.api import api_routes, web_routes
    from service.api.auth import derive_session_key

    if context.settings.api.ack_secret is not None:
        context.session_key = derive_session_key(
            context.settings.api.ack_secret.get_secret_value().encode()
        )
    app = FastAPI(
        title="LabSentinel API",
        version="1",
        description="Alerts, dead letters and patient timelines of LabSentinel. Every route "
        "under /api/v1 needs `Authorization: Bearer <token>`.",
        # The document is served under /api/v1 behind the bearer token (see api_routes);
        # no interactive docs page: it would load scripts from a CDN.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = context
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.globals["hospital"] = context.settings.hospital.name
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api_routes.router)
    app.include_router(web_routes.router)

    @app.middleware("http")
    async def count_requests(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        route = request.scope.get("route")
        # The route template, never the concrete path: paths carry tokens and ids.
        template = getattr(route, "path", "unmatched")
        metrics.http_requests.labels(
            template, request.method, metrics.status_class(response.status_code)
        ).inc()
        return response

    @app.get("/healthz", tags=["operations"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process and its event loop answer."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        """Readiness: database reachable, broker connected, partitions assigned, dispatcher
        running. 503 names what is not."""
        ctx: ApiContext = request.app.state.ctx
        checks = {"database": ctx.database_ok(), **ctx.readiness.checks()}
        failing = [name for name, ok in checks.items() if not ok]
        body = {"ready": not failing, "checks": checks, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        ctx: ApiContext = request.app.state.ctx
        from service.api.queries import refresh_exposure_gauges

        refresh_exposure_gauges(ctx, max_age_s=30.0)
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
