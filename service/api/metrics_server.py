"""/metrics, and the small server that serves it on a port of its own (``metrics.port``).

``metrics_response`` is the one way /metrics is answered: refresh the gauges read from the
database (at most every ``metrics.database_refresh_s``), then render the registry. The API
serves it on ``api.port`` when ``metrics.port`` is unset; otherwise ``MetricsServer``, a
daemon component like ``service.api.server.ApiServer``, serves only /metrics on
``metrics.host:metrics.port`` and the API's port has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.api.context import ApiContext, Readiness
from service.api.embedded import EmbeddedServer, ServedApp, served_context
from service.api.views.alert_gauges import refresh_alert_gauges
from service.api.views.exposure_gauges import refresh_exposure_gauges
from service.runtime import metrics

log = logging.getLogger(__name__)


def metrics_response(ctx: ApiContext) -> Response:
    """The Prometheus exposition after refreshing the database gauges. Blocks on the
    database (run it in a worker thread); never raises for a database outage (the gauges
    keep their last values and the refresh task counts an error)."""
    max_age = ctx.settings.metrics.database_refresh_s
    refresh_exposure_gauges(ctx, max_age_s=max_age)
    refresh_alert_gauges(ctx.engine, ctx.clock.now(), max_age_s=max_age)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)


def create_metrics_app(context: ApiContext) -> Starlette:
    """An ASGI app with /metrics only. No I/O."""

    def endpoint(request: Request) -> Response:  # sync: Starlette runs it in a thread
        return metrics_response(context)

    return Starlette(routes=[Route("/metrics", endpoint, methods=["GET"])])


class MetricsServer:
    name = "metrics"

    def __init__(self, context: ApiContext, host: str, port: int) -> None:
        self.config = uvicorn.Config(
            create_metrics_app(context),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        self.server = EmbeddedServer(self.config)
        self.port: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set. Raises RuntimeError when the port cannot be bound
        or the server stops by itself (fatal for the daemon, as for the API)."""
        sock = _bind(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        serving = asyncio.create_task(self.server.serve(sockets=[sock]), name="metrics-serve")
        waiting = asyncio.create_task(stop.wait(), name="metrics-stop")
        log.info("metrics listening", extra={"host": self.config.host, "port": self.port})
        try:
            await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.server.should_exit = True
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            await serving
            sock.close()
        if not stop.is_set():
            raise RuntimeError("metrics server stopped unexpectedly")


def _bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``. Bound here, not by uvicorn, whose bind
    failure is a ``SystemExit`` that escapes the event loop; raises RuntimeError instead."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(
            f"metrics server could not start on {host}:{port}: {exc.strerror}"
        ) from None
    return sock


def metrics_components(app: ServedApp, readiness: Readiness) -> list[MetricsServer]:
    """The daemon's metrics server, or none when ``metrics.port`` is unset (the API then
    serves /metrics). No I/O until ``run``."""
    settings = app.settings.metrics
    if settings.port is None:
        return []
    context = served_context(app, readiness)
    return [MetricsServer(context, host=settings.host, port=settings.port)]
