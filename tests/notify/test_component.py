"""The APScheduler component runs ``run_escalations`` on the wall clock in the daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.bootstrap import build_app
from service.notify.escalation import EscalationComponent
from service.notify.routed import RoutedPaging

from .helpers import paging_settings, write_routing


async def test_component_runs_the_job_and_stops(sqlite_url: str, tmp_path: Path) -> None:
    settings = paging_settings(
        sqlite_url,
        write_routing(tmp_path / "routing.toml"),
        {
            "pager": {"type": "console"},
            "email": {"type": "jsonl", "path": str(tmp_path / "p.jsonl")},
        },
    )
    settings = settings.model_copy(
        update={"paging": settings.paging.model_copy(update={"escalation_interval_s": 0.05})}
    )
    app = build_app(settings)  # wall clock, as `labsentinel run`
    try:
        component = EscalationComponent(app)
        assert isinstance(app.pipeline.delivery.paging, RoutedPaging)
        assert app.dispatcher.paging is app.pipeline.delivery.paging
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        for _ in range(100):
            if component.runs >= 2:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert component.runs >= 2
    finally:
        app.close()
