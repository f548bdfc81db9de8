"""What another process does to alerts (the CLI, another replica) reaches this one's /metrics.

The counters of ``service.notify.metrics`` only see the process that did the work; the
database gauges (``service.api.views.alert_gauges``) read ``alert_events``, ``alerts`` and
``silences`` at scrape time. Here the ack and the silence are made by the real
`labsentinel` command in a subprocess, the resolve through another engine, on both databases.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlmodel import Session, select

from service.api import create_app
from service.api.context import ApiContext
from service.db.models import Alert
from service.notify.escalation import run_escalations
from service.notify.lifecycle import resolve_manually
from service.runtime.metrics_settings import MetricsSettings
from tests.api.story import Story, build_story
from tests.notify.helpers import paging_settings, planted_feed, replay, write_routing

ROOT = Path(__file__).resolve().parents[2]


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABSENTINEL_")}
    return subprocess.run(
        [sys.executable, "-m", "service.cli.main", *args, "--database-url", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.mark.slow  # runs the `labsentinel` command as a subprocess
async def test_cli_ack_silence_and_other_resolve_show_in_metrics(
    database_url: str, tmp_path: Path
) -> None:
    story: Story = build_story(database_url, tmp_path)
    try:
        # Recount at every scrape (the default caches the database reads for 30 s).
        settings = story.settings.model_copy(
            update={"metrics": MetricsSettings(database_refresh_s=0)}
        )
        context = ApiContext(
            settings=settings, engine=story.app.engine, clinical=story.app.clinical
        )
        alert = story.alert()
        assert alert is not None and alert.id is not None
        severity = alert.severity
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = samples((await client.get("/metrics")).text)
            acked = cli(
                database_url,
                "alerts",
                "ack",
                str(alert.id),
                "--action",
                "repeat-labs",
                "--by",
                "Dr Night",
            )
            assert acked.returncode == 0, acked.stderr
            silenced = cli(
                database_url,
                "silence",
                "add",
                "--unit",
                "4W",
                "--hours",
                "2",
                "--author",
                "Dr Night",
                "--reason",
                "ward round",
            )
            assert silenced.returncode == 0, silenced.stderr
            after_ack = samples((await client.get("/metrics")).text)
            # Another replica (its own engine) resolves the alert by hand.
            other = create_engine(database_url)
            with Session(other) as session, session.begin():
                resolve_manually(session, alert.id, actor="Dr Day", now=datetime.now(UTC))
            other.dispose()
            after_resolve = samples((await client.get("/metrics")).text)
    finally:
        story.app.close()

    actions = "labsentinel_alert_actions_total"
    open_alerts = "labsentinel_open_alerts"
    assert value(before, open_alerts, severity=severity, acknowledged="false") >= 1
    assert value(before, open_alerts, severity=severity, acknowledged="true") == 0
    assert value(before, "labsentinel_active_silences") == 0
    # The CLI's ack, counted once by this process from the database, with the CLI as source.
    gained = value(after_ack, actions, action="acknowledged", source="cli") - value(
        before, actions, action="acknowledged", source="cli"
    )
    assert gained == 1
    assert value(after_ack, open_alerts, severity=severity, acknowledged="true") == 1
    assert value(after_ack, "labsentinel_active_silences") == 1
    resolved = value(after_resolve, actions, action="resolved", source="person") - value(
        after_ack, actions, action="resolved", source="person"
    )
    assert resolved == 1
    assert value(after_resolve, open_alerts, severity=severity, acknowledged="true") == 0
    # Counted at the scrape that read them, and not again.
    assert value(after_resolve, actions, action="acknowledged", source="cli") == value(
        after_ack, actions, action="acknowledged", source="cli"
    )
    assert (
        value(
            after_resolve, "labsentinel_scheduler_job_runs_total", task="alert_gauges", outcome="ok"
        )
        >= 3
    )


async def test_escalations_by_another_process_show_in_metrics(
    database_url: str, tmp_path: Path
) -> None:
    """`labsentinel escalations run --at` is ``run_escalations`` in its own process: here on an
    engine of its own, while the daemon's app serves /metrics."""
    settings = paging_settings(
        database_url,
        write_routing(tmp_path / "routing.toml"),
        {
            "pager": {"type": "console"},
            "email": {"type": "jsonl", "path": str(tmp_path / "p.jsonl")},
        },
    )
    settings = settings.model_copy(update={"metrics": MetricsSettings(database_refresh_s=0)})
    app, _ = replay(settings, [r.value for r in planted_feed().records])
    try:
        with Session(app.engine) as session:
            paged = [a.paged_at for a in session.exec(select(Alert)).all() if a.paged_at]
        assert paged, "the planted feed pages"
        context = ApiContext(settings=settings, engine=app.engine, clinical=app.clinical)
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            before = samples((await client.get("/metrics")).text)
            other = create_engine(database_url)
            report = run_escalations(other, settings, max(paged) + timedelta(minutes=31))
            other.dispose()
            after = samples((await client.get("/metrics")).text)
    finally:
        app.close()
    assert report.escalated, "a critical page unacknowledged for 31 minutes escalates"
    name = "labsentinel_alert_actions_total"
    gained = value(after, name, action="escalation", source="system") - value(
        before, name, action="escalation", source="system"
    )
    assert gained == len(report.escalated)
