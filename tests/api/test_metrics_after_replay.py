"""`labsentinel run` serves /metrics and /readyz: a feed through the real daemon (Tansu broker,
SQLite), then the scrape shows every metric operators chart and alert on, over real HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.api.server import ApiServer
from service.bootstrap import build_app
from service.daemon import Daemon
from service.runtime.clock import MessageClock
from service.runtime.settings import load_settings
from tests.api.story import ACK_SECRET, TOKEN, story_messages
from tests.integration.helpers import SESSION_MS, publish

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# Every metric the dashboards and alert rules rely on, by exposition name: a scrape that
# lacks one would leave a panel or an alert silently empty.
REQUIRED_METRICS = {
    "labsentinel_messages_consumed": "messages consumed by topic, type and outcome",
    "labsentinel_dead_letters": "parse failures and dead letters by reason class",
    "labsentinel_processing_seconds": "processing latency",
    "labsentinel_detection_seconds": "result arrival -> page handed to transport",
    "labsentinel_detection_from_observation_seconds": "observation time -> page",
    "labsentinel_consumer_lag": "consumer lag per partition",
    "labsentinel_alerts": "alerts by rule, severity, event",
    "labsentinel_active_exposure_windows": "active exposure windows",
    "labsentinel_database_errors": "database errors",
    "labsentinel_scheduler_job_runs": "scheduler job runs",
}


@dataclass
class Record:
    topic: str
    key: bytes | None
    value: bytes


async def test_metrics_after_a_feed_show_every_required_metric(
    broker, sqlite_url: str, unique: str, tmp_path: Path
) -> None:
    settings = load_settings(
        overrides={
            "database": {"url": sqlite_url},
            "kafka": {
                "bootstrap_servers": broker.bootstrap_servers,
                "group_id": f"labsentinel-{unique}",
                "topics": [f"oru-{unique}", f"rde-{unique}"],
                "dead_letter_topic": f"dlq-{unique}",
                "fetch_timeout_ms": 100,
                "session_timeout_ms": SESSION_MS,
            },
            "api": {"port": 0, "tokens": [TOKEN], "ack_secret": ACK_SECRET},
            "routing": {"default_channels": []},
            "dispatcher": {"poll_interval_s": 0.05},
            "logging": {"format": "text"},
        }
    )
    oru_topic = settings.kafka.topics[0]
    messages = story_messages(datetime.now(UTC).replace(microsecond=0))
    await publish(settings, [Record(oru_topic, None, m) for m in messages])
    app = build_app(settings, clock=MessageClock(), pages_out=tmp_path / "pages.jsonl")
    daemon = Daemon(app)
    server = next(c for c in daemon.components if isinstance(c, ApiServer))
    task = asyncio.create_task(daemon.run())
    try:
        deadline = asyncio.get_running_loop().time() + 45
        while daemon.consumer.state.records < len(messages) or (
            app.dispatcher.pending_counts().get("pending", 0)
        ):
            assert not task.done(), task.exception()
            assert asyncio.get_running_loop().time() < deadline, "feed not consumed in time"
            await asyncio.sleep(0.1)
        assert server.port
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {
                "database": True,
                "broker": True,
                "group": True,
                "dispatcher": True,
            }
            scrape = await client.get("/metrics")
            refused = await client.get("/api/v1/alerts")
        assert refused.status_code == 401
    finally:
        daemon.stop.set()
        await task
        app.close()

    assert scrape.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(scrape.text)}
    missing = {name: why for name, why in REQUIRED_METRICS.items() if name not in families}
    assert not missing, f"metrics missing from /metrics: {missing}"

    def value(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if s.name.endswith(("_total", "_count")) or s.name == name
            if all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert value("labsentinel_messages_consumed", topic=oru_topic, outcome="stored") >= 12
    assert value("labsentinel_messages_consumed", topic=oru_topic, outcome="dead_letter") == 2
    assert value("labsentinel_dead_letters", reason_class="parse") >= 1
    assert value("labsentinel_dead_letters", reason_class="unit") >= 1
    assert value("labsentinel_processing_seconds") >= 1
    assert value("labsentinel_alerts", rule="iron-antiresorptive-mineral", event="alert") >= 2
    lag = [
        s for s in families["labsentinel_consumer_lag"].samples if s.labels["topic"] == oru_topic
    ]
    assert lag and all(s.value == 0 for s in lag), "every message consumed: no lag"
    assert value("labsentinel_active_exposure_windows", drug_class="iv_iron") >= 1
    assert value("labsentinel_active_exposure_windows", drug_class="antiresorptive") >= 1
    assert value("labsentinel_scheduler_job_runs", task="exposure_refresh", outcome="ok") >= 1
    # Bounded labels: no patient identifier anywhere in the exposition.
    assert "MRN" not in scrape.text
