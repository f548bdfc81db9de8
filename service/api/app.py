"""The application factory: one ``ApiContext`` (what the routes need) → a FastAPI app.

``create_app`` does no I/O; the daemon component (``service.api.server``) and the tests build
the same app from the same objects, the tests with a SQLite or PostgreSQL engine of their own.
The context lives in ``service.api.context`` so the routers import it and never this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from service.api import web_text
from service.api.ack_routes import router as ack_router
from service.api.api_routes import router as api_router
from service.api.context import ApiContext, context_of
from service.api.dead_letter_routes import router as dead_letter_router
from service.api.docs_routes import router as docs_router
from service.api.limits import RequestLimits, known_caller
from service.api.metrics_server import metrics_response
from service.api.no_store import NoStore
from service.api.principal import RoleRefused
from service.api.schedule_routes import router as schedule_router
from service.api.signin_routes import role_refused
from service.api.signin_routes import router as signin_router
from service.api.web_actions import router as web_actions_router
from service.api.web_routes import router as web_router
from service.runtime import metrics

HERE = Path(__file__).resolve().parent


def create_app(context: ApiContext) -> FastAPI:
    app = FastAPI(
        title="LabSentinel API",
        version="1",
        description="Alerts, dead letters and patient timelines of LabSentinel. Every route "
        "under /api/v1 needs `Authorization: Bearer <token>`.",
        # The document is public at /openapi.json, and listed as plain HTML at /docs
        # (docs_routes): FastAPI's own docs pages would load scripts from a CDN.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = context
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.globals["hospital"] = context.settings.hospital.name
    web_text.install(app.state.templates.env)  # no bidi overrides in any page
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(api_router)
    app.include_router(web_router)
    app.include_router(ack_router)
    app.include_router(signin_router)
    app.add_exception_handler(RoleRefused, role_refused)
    app.include_router(web_actions_router)
    app.include_router(dead_letter_router)
    app.include_router(docs_router)
    app.include_router(schedule_router)

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

    # Outermost: bodies are bounded and callers checked before anything else reads.
    app.add_middleware(NoStore)
    app.add_middleware(RequestLimits, settings=context.settings.http, authenticated=known_caller)

    @app.get("/healthz", tags=["operations"], include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness: the process and its event loop answer."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        """Readiness: database reachable, broker connected, consumer group joined (with or
        without partitions: a standby replica is ready), dispatcher running. 503 names what
        is not."""
        ctx = context_of(request)
        checks = {"database": ctx.database_ok(), **ctx.readiness.checks()}
        failing = [name for name, ok in checks.items() if not ok]
        body = {"ready": not failing, "checks": checks, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200)

    if context.settings.metrics.port is None:  # else only on its own port (metrics_server)

        @app.get("/metrics", include_in_schema=False)
        def metrics_endpoint(request: Request) -> Response:
            return metrics_response(context_of(request))

    return app
