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
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from service.api.api_routes import router as api_router
from service.api.context import ApiContext, context_of
from service.api.views.exposure_gauges import refresh_exposure_gauges
from service.api.web_routes import router as web_router
from service.runtime import metrics

HERE = Path(__file__).resolve().parent
# /metrics recounts exposures from the database at most this often, however often scraped.
GAUGE_MAX_AGE_S = 30.0


def create_app(context: ApiContext) -> FastAPI:
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
    app.include_router(api_router)
    app.include_router(web_router)

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
        ctx = context_of(request)
        checks = {"database": ctx.database_ok(), **ctx.readiness.checks()}
        failing = [name for name, ok in checks.items() if not ok]
        body = {"ready": not failing, "checks": checks, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200)

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint(request: Request) -> Response:
        refresh_exposure_gauges(context_of(request), max_age_s=GAUGE_MAX_AGE_S)
        return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)

    return app
