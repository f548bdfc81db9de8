"""SIGHUP reloads routing and rosters in the running daemon; a bad file keeps the old ones.

The daemon's own reload component runs on the test's event loop (the main thread, so the
signal handler is a real one) with an App wired by ``build_app``; each reload is awaited by
the event it sets, never by a delay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.roster_state import NewOverride, add_override
from service.bootstrap import App, build_app
from service.daemon import Daemon
from service.notify.reload import ReloadComponent
from service.notify.rosters import state_path, update_state
from service.notify.routed import RoutedPaging
from service.runtime import metrics

from .helpers import paging_settings, write_routing


@dataclass
class Running:
    app: App
    paging: RoutedPaging
    component: ReloadComponent
    routing_file: Path


@pytest.fixture
async def running(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    routing_file = write_routing(tmp_path / "routing.toml")
    channels = {
        "pager": {"type": "console"},
        "email": {"type": "jsonl", "path": str(tmp_path / "p.jsonl")},
    }
    app = build_app(paging_settings(sqlite_url, routing_file, channels))
    paging = app.pipeline.delivery.paging
    assert isinstance(paging, RoutedPaging)
    component = ReloadComponent(app)
    stop = asyncio.Event()
    task = asyncio.create_task(component.run(stop))
    await asyncio.wait_for(component.listening.wait(), 10)
    try:
        yield Running(app, paging, component, routing_file)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        app.close()


async def hang_up(component: ReloadComponent) -> None:
    """Send SIGHUP to this process and wait until the component has finished the reload."""
    component.finished.clear()
    os.kill(os.getpid(), signal.SIGHUP)
    await asyncio.wait_for(component.finished.wait(), 10)  # a safety net, not a wait


def counted(result: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value("labsentinel_config_reload_total", {"result": result})
        or 0.0
    )


def now_on_call(paging: RoutedPaging, team: str = "icu") -> str:
    return str(paging.routing.teams[team].schedule.on_call(1, datetime.now(UTC)))


async def test_sighup_takes_up_a_new_override_everywhere(running: Running) -> None:
    before_ok = counted("ok")
    version = running.component.reloader.version
    assert now_on_call(running.paging) == "icu-1"
    now = datetime.now(UTC)
    entry = NewOverride("icu", 1, "icu-2", now - timedelta(hours=1), now + timedelta(hours=1))
    update_state(
        running.routing_file, lambda s: add_override(s, running.paging.routing, entry, now)[0]
    )
    assert now_on_call(running.paging) == "icu-1"  # nothing changes before the signal
    await hang_up(running.component)
    assert now_on_call(running.paging) == "icu-2"
    # The pipeline and the dispatcher share the one paging: both see the new routing.
    assert running.app.dispatcher.paging is running.paging
    assert counted("ok") == before_ok + 1
    assert running.component.reloader.version not in ("", version)
    info = metrics.REGISTRY.get_sample_value(
        "labsentinel_config_info", {"version": running.component.reloader.version}
    )
    assert info == 1.0


async def test_a_new_route_in_the_routing_file_is_used_after_sighup(running: Running) -> None:
    text = running.routing_file.read_text()
    running.routing_file.write_text(
        text.replace('[[routes]]\nteam = "icu"', '[[routes]]\nteam = "oncology"', 1)
    )
    await hang_up(running.component)
    assert running.paging.routing.routes[0].team == "oncology"


async def test_a_bad_routing_file_keeps_the_old_routing_and_says_why(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    before = running.paging.routing
    version = running.component.reloader.version
    before_error = counted("error")
    running.routing_file.write_text(
        running.routing_file.read_text().replace(
            'team = "nephrology"\nservices', 'team = "x"\nservices'
        )
    )
    with caplog.at_level(logging.ERROR, logger="service.notify.reload"):
        await hang_up(running.component)
    assert running.paging.routing is before  # the old routing, untouched
    assert running.component.reloader.version == version
    assert counted("error") == before_error + 1
    [record] = [r for r in caplog.records if r.name == "service.notify.reload"]
    reason = record.reason  # type: ignore[attr-defined]
    assert str(running.routing_file) in reason and "routes[1].team" in reason


async def test_a_bad_roster_file_keeps_the_old_routing(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    before = running.paging.routing
    state_path(running.routing_file).write_text('{"overrides": [{"team": "icu"}]}')
    with caplog.at_level(logging.ERROR, logger="service.notify.reload"):
        await hang_up(running.component)
    assert running.paging.routing is before
    [record] = [r for r in caplog.records if r.name == "service.notify.reload"]
    assert "overrides[0].person" in record.reason  # type: ignore[attr-defined]
    # Fixed, and signalled again: taken up.
    state_path(running.routing_file).write_text('{"overrides": []}')
    await hang_up(running.component)
    assert running.paging.routing is not before


def test_the_daemon_runs_the_reload_component(sqlite_url: str, tmp_path: Path) -> None:
    channels = {"pager": {"type": "console"}, "email": {"type": "console"}}
    settings = paging_settings(sqlite_url, write_routing(tmp_path / "routing.toml"), channels)
    app = build_app(settings)
    try:
        assert any(isinstance(c, ReloadComponent) for c in Daemon(app).components)
    finally:
        app.close()
