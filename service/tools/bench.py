"""`labsentinel bench`: throughput and detection latency of the real daemon, one JSON line.

1. Generates the synthetic hospital feed (service.tools.feedgen) and produces it to fresh topics on
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
import multiprocessing
import os
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import select, text
from sqlmodel import Session, col

from alerts.model import RULE_INTERACTION
from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult
from service.bootstrap import build_app
from service.daemon import Daemon, run_until_consumed
from service.db.engine import is_sqlite, make_engine
from service.db.migrate import upgrade
from service.db.models import Alert
from service.ingest.consumer import kafka_options
from service.ingest.topics import ensure_topics, produce
from service.runtime.clock import MessageClock
from service.runtime.settings import Settings, load_settings
from service.tools.broker import EmbeddedBroker
from service.tools.feedgen import Feed, generate_feed


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


def _standing_in(settings: Settings, pager: RecordingPager) -> dict[str, RecordingPager]:
    """The recording transport in place of every channel (routes page over team channels)."""
    return {name: pager for name in settings.channels}


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


async def _publish(settings: Settings, feed: Feed) -> float:
    """Produce the feed; return the plain aiokafka consume rate of it (the ceiling)."""
    options = kafka_options(settings.kafka)
    topics = [*settings.kafka.topics, settings.kafka.dead_letter_topic]
    await ensure_topics(options, topics, partitions=6)
    await produce(options, ((r.topic, r.key, r.value) for r in feed.records))
    return await _raw_consume(settings, len(feed.records))


def _throughput(config: str | None, settings: Settings, feed: Feed) -> dict[str, Any]:
    """One daemon process over the feed, measured like the scale-out run."""
    raw = asyncio.run(_publish(settings, feed))
    run = _run_instances(config, settings, len(feed.records), 1)
    rate = run["msgs_per_s"]
    return {
        "messages": len(feed.records),
        "seconds": run["seconds"],
        "msgs_per_s": rate,
        "raw_consume_msgs_per_s": round(raw, 1),
        "ratio_to_raw": round(rate / raw, 3),
        "planted": len(feed.planted),
        "detected": _detected(settings, feed),
        "peak_rss_mb": run["peak_rss_mb"],
    }


def _detected(settings: Settings, feed: Feed) -> int:
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
    return len({(c.patient_id, c.analyte) for c in feed.planted} & {tuple(r) for r in rows})


async def _latency(settings: Settings, feed: Feed, rate: int) -> dict[str, Any]:
    """Produce the feed at ``rate`` msg/s while the daemon runs; time planted pages."""
    options = kafka_options(settings.kafka)
    await ensure_topics(options, [*settings.kafka.topics, settings.kafka.dead_letter_topic])
    pager = RecordingPager()
    app = build_app(settings, clock=MessageClock(), transports=_standing_in(settings, pager))
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


def _instance_main(config: str | None, overrides: dict[str, Any], stop_file: str) -> None:
    """One daemon process of a scale-out run (multiprocessing target)."""
    settings = load_settings(config, overrides=overrides)

    async def run() -> None:
        pager = RecordingPager()
        app = build_app(settings, clock=MessageClock(), transports=_standing_in(settings, pager))
        daemon = Daemon(app, with_components=False)
        task = asyncio.create_task(daemon.run())
        while not os.path.exists(stop_file) and not task.done():
            await asyncio.sleep(0.1)
        daemon.stop.set()
        await task
        app.close()

    asyncio.run(run())


async def _group_done(settings: Settings, total: int) -> int:
    """Messages committed by the consumer group, over all partitions.

    Asked through a consumer of the group that never joins it (the embedded broker does not
    answer the admin client's offset request)."""
    consumer = AIOKafkaConsumer(
        group_id=settings.kafka.group_id, enable_auto_commit=False, **kafka_options(settings.kafka)
    )
    await consumer.start()
    try:
        done = 0
        for topic in settings.kafka.topics:
            for partition in consumer.partitions_for_topic(topic) or ():
                committed = await consumer.committed(TopicPartition(topic, partition))
                done += committed or 0
        return done
    finally:
        await consumer.stop()


def _run_instances(
    config: str | None, settings: Settings, total: int, instances: int
) -> dict[str, Any]:
    """N daemon processes in one consumer group over already-produced topics.

    Timed from the group's first commit to its last (process start-up and the group join are
    not throughput, as the raw consume is timed from its first fetch).
    """
    # Migrate once before the instances start (they would serialise on the lock anyway).
    build_app(settings, transports=_standing_in(settings, RecordingPager())).close()
    overrides = json.loads(settings.model_dump_json(include={"database", "kafka", "routing",
                                                             "channels", "api"}))  # fmt: skip
    stop_file = tempfile.mktemp(prefix="labsentinel-bench-stop-")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_instance_main, args=(config, overrides, stop_file))
        for _ in range(instances)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    first_commit = None
    try:
        while True:
            done = asyncio.run(_group_done(settings, total))
            if done and first_commit is None:
                first_commit = time.perf_counter()
            if done >= total:
                break
            if time.perf_counter() - started > 3600:
                raise TimeoutError(f"run committed {done}/{total}")
            time.sleep(0.5)  # each look opens a client: do not steal the daemon's CPU
        seconds = time.perf_counter() - (first_commit or started)
        peak_mb = max(_peak_rss_mb(worker.pid) for worker in workers)
    finally:
        Path(stop_file).touch()
        for worker in workers:
            worker.join(60)
        Path(stop_file).unlink(missing_ok=True)
    return {
        "seconds": round(seconds, 3),
        "msgs_per_s": round(total / seconds, 1),
        "peak_rss_mb": peak_mb,
    }


def _peak_rss_mb(pid: int | None) -> float:
    """The process's peak resident set (VmHWM) since it exec'd.

    Not getrusage(RUSAGE_CHILDREN): a spawned child is forked from this process first, and its
    maxrss would count this process's memory (the generated feed) for that moment.
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return 0.0


SEED_SQL = (
    # Results of 1,000,000 synthetic patients over 400 days, each with the claim of the message
    # that carried it, as a year of a hospital's chemistry would leave them.
    """
    INSERT INTO lab_results (patient_id, result_key, analyte, code, value, comparator,
        value_text, unit, reference_range, abnormal_flags, status, observed_at, received_at,
        message_time, control_id)
    SELECT 'SEED' || (g % 1000000), 'S' || g || '|17861-6', 'calcium', '17861-6', 9.2, '',
        '9.2', 'mg/dL', '8.5-10.5', 'N', 'F',
        (now() AT TIME ZONE 'UTC') - (g % 400) * interval '1 day',
        now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 'SEED' || g
    FROM generate_series(:first, :last) AS g
    """,
    """
    INSERT INTO processed_messages (sending_facility, control_id, message_type, processed_at)
    SELECT 'SEED HOSPITAL', 'SEED' || g, 'ORU^R01', now() AT TIME ZONE 'UTC'
    FROM generate_series(:first, :last) AS g
    """,
)


def seed_results(database_url: str, count: int, chunk: int = 1_000_000) -> float:
    """Fill the database with ``count`` stored results (PostgreSQL); return the seconds taken."""
    engine = make_engine(database_url)
    started = time.perf_counter()
    try:
        upgrade(engine)
        for first in range(1, count + 1, chunk):
            last = min(first + chunk - 1, count)
            with engine.begin() as connection:
                for sql in SEED_SQL:
                    connection.execute(text(sql), {"first": first, "last": last})
            print(f"bench: seeded {last:,} results", flush=True)
        with engine.begin() as connection:
            connection.execute(text("ANALYZE lab_results"))
            connection.execute(text("ANALYZE processed_messages"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


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
    instances: int = 0,
    seed_results_count: int = 0,
) -> dict[str, Any]:
    base = load_settings(config)
    run_id = uuid.uuid4().hex[:8]
    database_url = database_url or "sqlite:///labsentinel-bench.db"
    seeded = {}
    if seed_results_count:
        if is_sqlite(database_url):
            raise ValueError("--seed-results needs a PostgreSQL --database-url")
        print(f"bench: seeding {seed_results_count:,} stored results", flush=True)
        seconds = seed_results(database_url, seed_results_count)
        seeded = {"seeded_results": seed_results_count, "seed_seconds": round(seconds, 1)}
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
        result = _throughput(config, settings, feed)
        if instances:
            print(f"bench: scale-out run, {instances} processes in one group", flush=True)
            group = _settings(config, base, bootstrap, uuid.uuid4().hex[:8], database_url)
            group_feed = generate_feed(
                messages=messages, patients=patients, planted=planted, seed=23, start=start,
                oru_topic=group.kafka.topics[0], rde_topic=group.kafka.topics[1], keyed=False,
            )  # fmt: skip
            asyncio.run(_publish(group, group_feed))
            run = _run_instances(config, group, len(group_feed.records), instances)
            result |= {
                "instances": instances,
                "instances_peak_rss_mb": run["peak_rss_mb"],
                "instances_msgs_per_s": run["msgs_per_s"],
                "scale_out": round(run["msgs_per_s"] / result["msgs_per_s"], 2),
            }
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
    result["database"] = "sqlite" if is_sqlite(database_url) else "postgresql"
    result |= seeded
    return result


def main_json(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True)
