"""The API server as a daemon component: uvicorn serving ``create_app`` in the daemon's loop.

uvicorn's own signal handlers are off (the daemon owns SIGTERM/SIGINT and sets ``stop``);
when ``stop`` is set the server finishes requests in flight and returns. A port that cannot
be bound is fatal (``SystemExit`` from uvicorn becomes a RuntimeError that stops the daemon).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

from service.api.app import create_app
from service.api.context import ApiContext, Readiness
from service.api.embedded import EmbeddedServer, ServedApp, served_context
from service.api.slow_clients import h11_with_header_deadline

log = logging.getLogger(__name__)


class ApiServer:
    name = "api"

    def __init__(self, context: ApiContext, host: str, port: int) -> None:
        self.context = context
        self.app = create_app(context)
        http = context.settings.http
        self.config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            log_config=None,  # our JSON logging (service.runtime.logs) handles uvicorn's loggers
            access_log=False,  # access lines would carry ack tokens in their paths
            lifespan="off",
            server_header=False,
            # request.client stays the TCP peer: auth.trusted_proxies is checked against it,
            # and uvicorn would otherwise replace it with X-Forwarded-For from a local peer.
            proxy_headers=False,
            timeout_graceful_shutdown=5,
            # Bounds on what a client may hold (configs/labsentinel.toml [http]).
            timeout_keep_alive=http.keep_alive_timeout_s,
            # h11 (the protocol whose header size limit is the next line) with a deadline on
            # the headers; bodies are bounded by service.api.limits.
            http=h11_with_header_deadline(http.header_read_timeout_s),
            h11_max_incomplete_event_size=http.max_header_bytes,
            limit_concurrency=http.max_connections,
        )
        self.server = EmbeddedServer(self.config)
        self.port: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        serving = asyncio.create_task(self.server.serve(), name="api-serve")
        waiting = asyncio.create_task(stop.wait(), name="api-stop")
        try:
            while not self.server.started and not serving.done():
                await asyncio.sleep(0.02)
            if self.server.started:
                sockets = self.server.servers[0].sockets if self.server.servers else []
                if sockets:
                    self.port = sockets[0].getsockname()[1]
                log.info("api listening", extra={"host": self.config.host, "port": self.port})
            await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.server.should_exit = True
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            try:
                await serving
            except SystemExit as exc:  # uvicorn exits this way when it cannot bind
                raise RuntimeError(
                    f"api server could not start on {self.config.host}:{self.config.port}"
                ) from exc
        if not stop.is_set():
            raise RuntimeError("api server stopped unexpectedly")


def api_components(app: ServedApp, readiness: Readiness) -> list[ApiServer]:
    """The daemon's API component, or none when ``api.enabled`` is false.

    ``readiness`` holds what /readyz reports besides the database (the daemon's consumer
    state and dispatcher). Builds the FastAPI app; no I/O until ``run``.
    """
    if not app.settings.api.enabled:
        return []
    context = served_context(app, readiness)
    return [ApiServer(context, host=app.settings.api.host, port=app.settings.api.port)]
