"""`labsentinel bench`: throughput and detection latency of the real daemon, one JSON line.

1. Generates the synthetic hospital feed (service.feedgen) and produces it to fresh topics on
   the broker (the embedded Tansu by default, or ``--bootstrap-servers``).
2. Measures a plain aiokafka consume of the same topics (the ceiling: ``raw_consume``).
3. Runs the real daemon (consumer → pipeline → outbox → dispatcher) over the feed and measures
   first fetch to last commit (``msgs_per_s``).
4. With ``--rate N``, a second, paced run produces the planted cases' messages at N msg/s
   while the daemon runs, and measures detection latency: record produced → page handed to the
   transport (p50/p99).

The last line printed is a JSON object; earlier lines are progress for a human.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult
from service.bootstrap import build_app
from service.broker import EmbeddedBroker
from service.clock import MessageClock
from service.consumer import kafka_options
from service.daemon import run_until_consumed
from service.db.engine import is_sqlite
from service.feedgen import Feed, generate_feed
from service.settings import Settings, load_settings
from service.topics import ensure_topics, produce


@dataclass
class RecordingPager:
    """A transport that records when each page was handed to it (bench only)."""

    name: str = "bench"
    handed: dict[tuple[str, str], float] = field(default_factory=dict)

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        key = (notification.patient_id, notification.analyte or "")
        self.handed.setdefault(key, time.perf_counter())
        return DeliveryResult.delivered()

    async def close(self) -> None:
        return None


def _settings(
    config: str | None, base: Settings, bootstrap: str, run_id: str, database_url: str
) -> Settings:
    return load_settings(
        config,
        overrides={
            "database": {"url": database_url},
            "kafka": {
                "bootstrap_servers": bootstrap,
                "group_id": f"bench-{run_id}",
                "topics": [f"bench-oru-{run_id}", f"bench-rde-{run_id}"],
                "dead_letter_topic": f"bench-dlq-{run_id}",
                "session_timeout_ms": 6000,
                "max_batch_records": base.kafka.max_batch_records,
            },
            "routing": {"default_channels": ["bench"]},
            "channels": {"bench": {"type": "console"}},  # replaced by RecordingPager below
            "dispatcher": {"poll_interval_s": 0.05},
            "api": {"port": 0},
        },
    )


async def _raw_consume(settings: Settings, expected: int) -> float:
    consumer = AIOKafkaConsumer(
        *settings.kafka.topics,
        group_id=f"{settings.kafka.group_id}-raw",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        **kafka_options(settings.kafka),
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < expected:
            # The daemon's own batch size, so the ratio compares like with like.
            batch = await consumer.getmany(
                timeout_ms=1000, max_records=settings.kafka.max_batch_records
            )
            if batch and started is None:
                started = time.perf_counter()
            seen += sum(len(records) for records in batch.values())
        return seen / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()


async def _throughput(settings: Settings, feed: Feed) -> dict[str, Any]:
    options = kafka_options(settings.kafka)
    await ensure_topics(options, [*settings.kafka.topics, settings.kafka.dead_letter_topic])
    await produce(options, ((r.topic, r.key, r.value) for r in feed.records))
    raw = await _raw_consume(settings, len(feed.records))
    pager = RecordingPager()
    app = build_app(settings, clock=MessageClock(), transports={"bench": pager})
    try:
        daemon = await run_until_consumed(app, len(feed.records), timeout_s=3600)
    finally:
        app.close()
    state = daemon.consumer.state
    seconds = (state.last_commit_at or 0) - (state.first_fetch_at or 0)
    return {
        "messages": state.records,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(state.records / seconds, 1) if seconds > 0 else None,
        "raw_consume_msgs_per_s": round(raw, 1),
        "ratio_to_raw": round(state.records / seconds / raw, 3) if seconds > 0 else None,
        "planted": len(feed.planted),
        "detected": len({(c.patient_id, c.analyte) for c in feed.planted} & set(pager.handed)),
        "outcomes": dict(state.outcomes),
    }


async def _latency(settings: Settings, feed: Feed, rate: int) -> dict[str, Any]:
    """Produce the feed at ``rate`` msg/s while the daemon runs; time planted pages."""
    options = kafka_options(settings.kafka)
    await ensure_topics(options, [*settings.kafka.topics, settings.kafka.dead_letter_topic])
    pager = RecordingPager()
    app = build_app(settings, clock=MessageClock(), transports={"bench": pager})
    planted_patients = {c.patient_id for c in feed.planted}
    produced_at: dict[str, float] = {}  # patient → when its latest record was produced
    page_cause: dict[tuple[str, str], float] = {}

    async def pace() -> None:
        producer = AIOKafkaProducer(acks=1, linger_ms=0, **options)
        await producer.start()
        try:
            interval, next_at = 1.0 / rate, time.perf_counter()
            for record in feed.records:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                next_at += interval
                await producer.send_and_wait(record.topic, record.value, key=record.key)
                patient = (record.key or b"").decode(errors="replace")
                if patient in planted_patients:
                    produced_at[patient] = time.perf_counter()
                    for case in feed.planted:
                        key = (case.patient_id, case.analyte)
                        if case.patient_id == patient and key not in pager.handed:
                            page_cause[key] = produced_at[patient]
        finally:
            await producer.stop()

    try:
        producer_task = asyncio.create_task(pace())
        daemon_task = asyncio.create_task(
            run_until_consumed(app, len(feed.records), timeout_s=len(feed.records) / rate + 120)
        )
        await producer_task
        await daemon_task
    finally:
        app.close()
    latencies = sorted(
        (pager.handed[key] - page_cause[key]) * 1000 for key in pager.handed if key in page_cause
    )
    return {
        "rate": rate,
        "latency_samples": len(latencies),
        "detection_latency_ms_p50": _percentile(latencies, 0.50),
        "detection_latency_ms_p99": _percentile(latencies, 0.99),
        "latency_planted": len(feed.planted),
        "latency_detected": len(pager.handed),
    }


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[index], 1)


def run_bench(
    *,
    messages: int,
    patients: int,
    planted: int,
    database_url: str | None,
    rate: int | None,
    bootstrap_servers: str | None,
    config: str | None = None,
) -> dict[str, Any]:
    base = load_settings(config)
    run_id = uuid.uuid4().hex[:8]
    database_url = database_url or "sqlite:///labsentinel-bench.db"
    broker = None if bootstrap_servers else EmbeddedBroker().start()
    bootstrap = bootstrap_servers or broker.bootstrap_servers  # type: ignore[union-attr]
    try:
        settings = _settings(config, base, bootstrap, run_id, database_url)
        start = (datetime.now(UTC) - timedelta(days=40)).replace(second=0, microsecond=0)
        print(f"bench: generating {messages} messages for {patients} patients", flush=True)
        feed = generate_feed(
            messages=messages, patients=patients, planted=planted, seed=17, start=start,
            oru_topic=settings.kafka.topics[0], rde_topic=settings.kafka.topics[1],
        )  # fmt: skip
        print("bench: throughput run", flush=True)
        result = asyncio.run(_throughput(settings, feed))
        if rate:
            paced_id = uuid.uuid4().hex[:8]
            paced = _settings(config, base, bootstrap, paced_id, database_url)
            size = max(rate * 10, planted * 40)
            paced_planted = max(planted, 50)  # enough samples for a p99
            paced_feed = generate_feed(
                messages=size, patients=max(patients // 10, paced_planted * 4),
                planted=paced_planted,
                seed=29, start=start, oru_topic=paced.kafka.topics[0],
                rde_topic=paced.kafka.topics[1],
            )  # fmt: skip
            print(f"bench: paced run at {rate} msg/s ({size} messages)", flush=True)
            result |= asyncio.run(_latency(paced, paced_feed, rate))
    finally:
        if broker is not None:
            broker.stop()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["database"] = "sqlite" if is_sqlite(database_url) else "postgresql"
    return result


def main_json(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True)
