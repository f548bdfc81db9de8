"""Shared steps of the integration tests: settings for one test, feed publishing, page reading."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from service.ingest.consumer import kafka_options
from service.ingest.topics import ensure_topics, produce
from service.runtime.settings import Settings, load_settings
from service.tools.broker import EmbeddedBroker
from service.tools.feedgen import Feed, generate_feed

# Tansu holds a new group's first join for about half the session timeout; 6 s is the
# smallest a Kafka broker accepts by default (group.min.session.timeout.ms).
SESSION_MS = 6000


def settings_for(broker: EmbeddedBroker, database_url: str, unique: str) -> Settings:
    return load_settings(
        overrides={
            "database": {"url": database_url},
            "kafka": {
                "bootstrap_servers": broker.bootstrap_servers,
                "group_id": f"labsentinel-{unique}",
                "topics": [f"oru-{unique}", f"rde-{unique}"],
                "dead_letter_topic": f"dlq-{unique}",
                "fetch_timeout_ms": 100,
                "max_batch_records": 200,
                "session_timeout_ms": SESSION_MS,
            },
            "routing": {"default_channels": []},
            "api": {"port": 0},
            "dispatcher": {"poll_interval_s": 0.05},
            "logging": {"format": "text"},
        }
    )


def make_feed(settings: Settings, *, messages: int = 600, garbage: int = 3, seed: int = 11) -> Feed:
    oru, rde = settings.kafka.topics
    start = (datetime.now(UTC) - timedelta(days=36)).replace(second=0, microsecond=0)
    return generate_feed(
        messages=messages,
        patients=200,
        planted=5,
        seed=seed,
        start=start,
        garbage=garbage,
        oru_topic=oru,
        rde_topic=rde,
        keyed=False,  # correctness must not depend on a patient's messages sharing a partition
    )


async def publish(settings: Settings, records: Any) -> int:
    options = kafka_options(settings.kafka)
    await ensure_topics(options, [*settings.kafka.topics, settings.kafka.dead_letter_topic])
    return await produce(options, ((r.topic, r.key, r.value) for r in records))


def read_pages(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count_rows(engine: Any, model: Any) -> int:
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())
