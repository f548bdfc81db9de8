"""`metrics.port`: /metrics on a server of its own and not on the clinicians' port (real
uvicorn servers on real sockets, as the daemon runs them); unset, the API serves it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from service.api.context import Readiness
from service.api.metrics_server import MetricsServer, metrics_components
from service.api.server import ApiServer, api_components
from service.bootstrap import build_app
from service.runtime.settings import load_settings


def settings_with(sqlite_url: str, metrics: dict) -> object:
    return load_settings(
        overrides={
            "database": {"url": sqlite_url},
            "api": {"port": 0, "tokens": ["metrics-port-token"]},
            "metrics": metrics,
            "routing": {"default_channels": []},
            "logging": {"format": "text"},
        }
    )


async def wait_listening(server: ApiServer | MetricsServer, task: asyncio.Task) -> int:
    for _ in range(1000):
        if server.port:
            return server.port
        assert not task.done(), task.exception()
        await asyncio.sleep(0.01)
    pytest.fail("server never listened")


async def test_metrics_on_their_own_port_only(sqlite_url: str, tmp_path: Path) -> None:
    settings = settings_with(sqlite_url, {"port": 0, "host": "127.0.0.1"})
    app = build_app(settings)  # type: ignore[arg-type]
    readiness = Readiness()
    (api,) = api_components(app, readiness)
    (metrics_server,) = metrics_components(app, readiness)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(api.run(stop)), asyncio.create_task(metrics_server.run(stop))]
    try:
        api_port = await wait_listening(api, tasks[0])
        metrics_port = await wait_listening(metrics_server, tasks[1])
        assert api_port != metrics_port
        async with httpx.AsyncClient() as client:
            scraped = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            on_api = await client.get(f"http://127.0.0.1:{api_port}/metrics")
            health_on_api = await client.get(f"http://127.0.0.1:{api_port}/healthz")
            pages_on_metrics = await client.get(f"http://127.0.0.1:{metrics_port}/healthz")
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        app.close()
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "labsentinel_build_info{" in scraped.text
    assert "labsentinel_open_alerts{" in scraped.text  # the database gauges are refreshed
    assert "process_cpu_seconds_total" in scraped.text
    assert on_api.status_code == 404  # not on the clinicians' port
    assert health_on_api.status_code == 200
    assert pages_on_metrics.status_code == 404  # nothing but /metrics on the metrics port


async def test_without_metrics_port_the_api_serves_metrics(sqlite_url: str) -> None:
    settings = settings_with(sqlite_url, {})
    app = build_app(settings)  # type: ignore[arg-type]
    assert metrics_components(app, Readiness()) == []
    (api,) = api_components(app, Readiness())
    stop = asyncio.Event()
    task = asyncio.create_task(api.run(stop))
    try:
        port = await wait_listening(api, task)
        async with httpx.AsyncClient() as client:
            scraped = await client.get(f"http://127.0.0.1:{port}/metrics")
    finally:
        stop.set()
        await task
        app.close()
    assert scraped.status_code == 200 and "labsentinel_build_info{" in scraped.text


async def test_a_taken_metrics_port_stops_the_daemon(sqlite_url: str) -> None:
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    taken = blocker.sockets[0].getsockname()[1]
    settings = settings_with(sqlite_url, {"port": taken})
    app = build_app(settings)  # type: ignore[arg-type]
    (metrics_server,) = metrics_components(app, Readiness())
    try:
        with pytest.raises(RuntimeError, match="metrics server could not start"):
            await asyncio.wait_for(metrics_server.run(asyncio.Event()), 30)
    finally:
        blocker.close()
        await blocker.wait_closed()
        app.close()
