"""The daemon's periodic jobs run on APScheduler, always the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler


async def run_every(
    stop: asyncio.Event, job: Callable[[], Awaitable[None]], *, seconds: float, job_id: str
) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop`` is set.

    ``job`` must not raise (log and return; the next run retries). A slow run is never
    overlapped by the next (``max_instances=1``), and runs missed while the event loop was busy
    collapse into one (``coalesce``). The job's state lives in the database, so a restart
    neither loses nor repeats what it does; the scheduler itself keeps nothing.
    """
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        job,
        "interval",
        seconds=seconds,
        id=job_id,
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
        misfire_grace_time=None,
    )
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
