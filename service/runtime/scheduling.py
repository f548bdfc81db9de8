"""The daemon's periodic jobs run on APScheduler, always the same way, and are counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from service.runtime import metrics

log = logging.getLogger(__name__)


def counted(task: str, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """``job`` as a run that never raises: each run is counted in
    ``labsentinel_scheduler_job_runs_total{task, outcome}``, a success also sets the task's
    last-success time, and a failure is logged by its exception type only (a message could
    carry patient data)."""

    async def run() -> None:
        try:
            await job()
        except Exception as exc:  # an outage or a bug: the next run retries
            metrics.job_run(task, ok=False)
            with contextlib.suppress(Exception):
                log.warning(
                    "scheduled task failed", extra={"task": task, "error": type(exc).__name__}
                )
            return
        metrics.job_run(task, ok=True)

    return run


async def run_every(
    stop: asyncio.Event, job: Callable[[], Awaitable[None]], *, seconds: float, task: str
) -> None:
    """Run ``job`` now and then every ``seconds`` until ``stop`` is set.

    ``job`` raises for a failed run (see ``counted``; the next run retries). ``task`` names it
    in the metrics (one of ``metrics.SCHEDULER_TASKS``) and is the APScheduler job id. A slow
    run is never overlapped by the next (``max_instances=1``), and runs missed while the event
    loop was busy collapse into one (``coalesce``). The job's state lives in the database, so
    a restart neither loses nor repeats what it does; the scheduler itself keeps nothing.
    """
    metrics.job_scheduled(task, seconds)
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(
        counted(task, job),
        "interval",
        seconds=seconds,
        id=task,
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
        metrics.job_scheduled(task, 0)
