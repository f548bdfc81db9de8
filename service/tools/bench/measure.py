"""The bench's measurements: the plain-aiokafka ceiling, the daemon's throughput, planted cases
detected, and detection latency under a paced feed.

Blocking except the coroutines, which run on the caller's event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import select
from sqlmodel import Session, col

from alerts.identity import split_patient_key
from alerts.model import RULE_INTERACTION
from service.bootstrap import build_app
from service.daemon import run_until_consumed
from service.db.engine import make_engine
from service.db.models import Alert
from service.ingest.consumer import kafka_options
from service.ingest.topics import ensure_topics, produce
from service.runtime.clock import MessageClock
from service.runtime.settings import Settings
from service.tools.bench.instances import run_instances
from service.tools.bench.recording import RecordingPager, standing_in
from service.tools.feedgen import Feed


async def raw_consume(settings: Settings, expected: int) -> float:
    """Messages per second of a plain aiokafka consume of the topics (the ceiling)."""
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


async def publish(settings: Settings, feed: Feed) -> float:
    """Produce the feed; return the plain aiokafka consume rate of it (the ceiling)."""
    options = kafka_options(settings.kafka)
    topics = [*settings.kafka.topics, settings.kafka.dead_letter_topic]
    await ensure_topics(options, topics, partitions=6)
    await produce(options, ((r.topic, r.key, r.value) for r in feed.records))
    return await raw_consume(settings, len(feed.records))


def throughput(config: str | None, settings: Settings, feed: Feed) -> dict[str, Any]:
    """One daemon process over the feed, measured like the scale-out run."""
    raw = asyncio.run(publish(settings, feed))
    run = run_instances(config, settings, len(feed.records), 1)
    rate = run["msgs_per_s"]
    return {
        "messages": len(feed.records),
        "seconds": run["seconds"],
        "msgs_per_s": rate,
        "raw_consume_msgs_per_s": round(raw, 1),
        "ratio_to_raw": round(rate / raw, 3),
        "planted": len(feed.planted),
        "detected": detected(settings, feed),
        "peak_rss_mb": run["peak_rss_mb"],
    }


def detected(settings: Settings, feed: Feed) -> int:
    """Planted (patient, analyte) pairs with a paging alert in the database."""
    engine = make_engine(settings.database.url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(col(Alert.patient_id), col(Alert.analyte)).where(
                    col(Alert.rule) == RULE_INTERACTION,
                    col(Alert.severity).in_(("high", "critical")),
                )
            ).all()
    finally:
        engine.dispose()
    # Planted cases name the MRN as sent; alerts are keyed by identifier and authority.
    paged = {(split_patient_key(patient)[0], analyte) for patient, analyte in rows}
    return len({(c.patient_id, c.analyte) for c in feed.planted} & paged)


async def latency(settings: Settings, feed: Feed, rate: int) -> dict[str, Any]:
    """Produce the feed at ``rate`` msg/s while the daemon runs; time planted pages."""
    options = kafka_options(settings.kafka)
    await ensure_topics(options, [*settings.kafka.topics, settings.kafka.dead_letter_topic])
    pager = RecordingPager()
    app = build_app(settings, clock=MessageClock(), transports=standing_in(settings, pager))
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
        "detection_latency_ms_p50": percentile(latencies, 0.50),
        "detection_latency_ms_p99": percentile(latencies, 0.99),
        "latency_planted": len(feed.planted),
        "latency_detected": len(pager.handed),
    }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[index], 1)
