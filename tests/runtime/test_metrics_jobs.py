"""Every periodic task is counted (runs, errors, last success), under the label ``task``; the
registry carries process and build-info metrics.

The escalation and reminder components run on their real APScheduler job against a database
that is down (an engine pointing at a closed port), so their errors are counted as the
shipped `LabSentinelSchedulerJobErrors` rule needs; the dispatcher's outbox rounds and the
healthy components count successes.
"""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from service.bootstrap import App, build_app
from service.notify.escalation import EscalationComponent
from service.notify.reminders import ReminderComponent
from service.runtime import metrics
from service.runtime.scheduling import counted, run_every
from tests.notify.helpers import paging_settings, write_routing

RUNS = "labsentinel_scheduler_job_runs_total"
LAST_SUCCESS = "labsentinel_scheduler_job_last_success_timestamp_seconds"
INTERVAL = "labsentinel_scheduler_job_interval_seconds"
# A database nobody listens on: every query fails at once (connection refused).
DOWN_URL = "postgresql+psycopg://nobody@127.0.0.1:9/none"


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` (set by the jobs under test), polling the loop; generous cap."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"never happened: {what}")


async def test_counted_counts_runs_errors_and_last_success() -> None:
    failures = iter([True, False])

    async def job() -> None:
        if next(failures):
            raise ConnectionError("database down")

    run = counted("reminders", job)
    ok, errors = (
        sample(RUNS, task="reminders", outcome="ok"),
        sample(RUNS, task="reminders", outcome="error"),
    )
    before = sample(LAST_SUCCESS, task="reminders")
    await run()  # fails: counted, never raised
    assert sample(RUNS, task="reminders", outcome="error") == errors + 1
    assert sample(LAST_SUCCESS, task="reminders") == before
    await run()
    assert sample(RUNS, task="reminders", outcome="ok") == ok + 1
    assert sample(LAST_SUCCESS, task="reminders") > before


async def test_unknown_task_is_other_and_label_is_task() -> None:
    metrics.job_run("no-such-task", ok=True)
    assert sample(RUNS, task="other", outcome="ok") >= 1
    families = {
        f.name: f
        for f in text_string_to_metric_families(generate_latest(metrics.REGISTRY).decode())
    }
    for sample_ in families["labsentinel_scheduler_job_runs"].samples:
        assert "job" not in sample_.labels and "task" in sample_.labels


async def test_run_every_runs_on_apscheduler_and_publishes_its_interval() -> None:
    runs: list[float] = []
    stop = asyncio.Event()

    async def job() -> None:
        runs.append(sample(INTERVAL, task="outbox_retry"))
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        if len(runs) >= 3:
            stop.set()

    errors = sample(RUNS, task="outbox_retry", outcome="error")
    ok = sample(RUNS, task="outbox_retry", outcome="ok")
    await asyncio.wait_for(run_every(stop, job, seconds=0.01, task="outbox_retry"), 10)
    assert runs[0] == 0.01  # published while it runs
    assert sample(RUNS, task="outbox_retry", outcome="error") == errors + 1
    assert sample(RUNS, task="outbox_retry", outcome="ok") >= ok + 2
    assert sample(INTERVAL, task="outbox_retry") == 0  # stopped: no longer runs here


def _app(sqlite_url: str, tmp_path: Path) -> App:
    settings = paging_settings(
        sqlite_url,
        write_routing(tmp_path / "routing.toml"),
        {
            "pager": {"type": "console"},
            "email": {"type": "jsonl", "path": str(tmp_path / "p.jsonl")},
        },
    )
    settings = settings.model_copy(
        update={
            "paging": settings.paging.model_copy(update={"escalation_interval_s": 0.05}),
            "monitoring": settings.monitoring.model_copy(update={"sweep_interval_s": 0.05}),
        }
    )
    return build_app(settings)  # the wall clock, as `labsentinel run`


@pytest.mark.parametrize(
    ("component_type", "task"),
    [(EscalationComponent, "escalation"), (ReminderComponent, "reminders")],
)
async def test_component_errors_and_successes_are_counted(
    component_type: Callable[[App], object], task: str, sqlite_url: str, tmp_path: Path
) -> None:
    app = _app(sqlite_url, tmp_path)
    healthy_engine = app.engine
    down = create_engine(DOWN_URL, connect_args={"connect_timeout": 1})
    try:
        component = component_type(app)
        run: Callable[[asyncio.Event], Awaitable[None]] = component.run  # type: ignore[attr-defined]
        errors = sample(RUNS, task=task, outcome="error")
        ok = sample(RUNS, task=task, outcome="ok")
        app.engine = down  # the database goes away
        stop = asyncio.Event()
        running = asyncio.create_task(run(stop))
        await until(lambda: sample(RUNS, task=task, outcome="error") >= errors + 2, "errors")
        assert sample(RUNS, task=task, outcome="ok") == ok
        assert sample(INTERVAL, task=task) == 0.05
        app.engine = healthy_engine  # and comes back
        await until(lambda: sample(RUNS, task=task, outcome="ok") >= ok + 1, "a success")
        stop.set()
        await asyncio.wait_for(running, 10)
        assert sample(LAST_SUCCESS, task=task) > 0
    finally:
        app.engine = healthy_engine
        down.dispose()
        app.close()


async def test_dispatcher_rounds_are_the_outbox_retry_task(sqlite_url: str, tmp_path: Path) -> None:
    app = _app(sqlite_url, tmp_path)
    try:
        ok = sample(RUNS, task="outbox_retry", outcome="ok")
        stop = asyncio.Event()
        running = asyncio.create_task(app.dispatcher.run(stop))
        await until(lambda: sample(RUNS, task="outbox_retry", outcome="ok") >= ok + 1, "a round")
        assert sample(INTERVAL, task="outbox_retry") == app.settings.dispatcher.poll_interval_s
        stop.set()
        await asyncio.wait_for(running, 10)
    finally:
        app.close()


def test_process_and_build_info_are_exported() -> None:
    text = generate_latest(metrics.REGISTRY).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "process_cpu_seconds" in families and "process_resident_memory_bytes" in families
    assert "python_info" in families
    (info,) = families["labsentinel_build_info"].samples
    assert info.value == 1
    assert info.labels == {
        "version": metrics.package_version(),
        "python": platform.python_version(),
    }
    assert info.labels["version"] != "unknown"
