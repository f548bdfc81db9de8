"""``run_bench``: the whole bench in order (feed, throughput, scale-out, paced latency)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from service.db.engine import is_sqlite
from service.runtime.settings import load_settings
from service.tools.bench.instances import run_instances
from service.tools.bench.measure import latency, publish, throughput
from service.tools.bench.recording import bench_settings
from service.tools.bench.seed import seed_results
from service.tools.broker import EmbeddedBroker
from service.tools.feedgen import generate_feed
from service.tools.kafka import KAFKA_VERSION, ApacheKafka


def start_broker(kind: str) -> EmbeddedBroker | ApacheKafka:
    """The broker the bench starts for itself: Tansu (embedded) or one Apache Kafka node."""
    if kind == "kafka":
        print(f"bench: starting Apache Kafka {KAFKA_VERSION}", flush=True)
        return ApacheKafka(heap="1g", quick_start=False).start()
    return EmbeddedBroker().start()


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
    broker_kind: str = "tansu",
) -> dict[str, Any]:
    """Run the bench; returns the result object. Raises ValueError for ``seed_results_count``
    on SQLite. Blocking (minutes)."""
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
    broker = None if bootstrap_servers else start_broker(broker_kind)
    bootstrap = bootstrap_servers or broker.bootstrap_servers  # type: ignore[union-attr]
    try:
        settings = bench_settings(config, base, bootstrap, run_id, database_url)
        start = (datetime.now(UTC) - timedelta(days=40)).replace(second=0, microsecond=0)
        print(f"bench: generating {messages} messages for {patients} patients", flush=True)
        feed = generate_feed(
            messages=messages,
            patients=patients,
            planted=planted,
            seed=17,
            start=start,
            oru_topic=settings.kafka.topics[0],
            rde_topic=settings.kafka.topics[1],
        )
        print("bench: throughput run", flush=True)
        result = throughput(config, settings, feed)
        if instances:
            print(f"bench: scale-out run, {instances} processes in one group", flush=True)
            group = bench_settings(config, base, bootstrap, uuid.uuid4().hex[:8], database_url)
            group_feed = generate_feed(
                messages=messages,
                patients=patients,
                planted=planted,
                seed=23,
                start=start,
                oru_topic=group.kafka.topics[0],
                rde_topic=group.kafka.topics[1],
                keyed=False,
            )
            asyncio.run(publish(group, group_feed))
            run = run_instances(config, group, len(group_feed.records), instances)
            result |= {
                "instances": instances,
                "instances_peak_rss_mb": run["peak_rss_mb"],
                "instances_msgs_per_s": run["msgs_per_s"],
                "scale_out": round(run["msgs_per_s"] / result["msgs_per_s"], 2),
            }
        if rate:
            paced = bench_settings(config, base, bootstrap, uuid.uuid4().hex[:8], database_url)
            size = max(rate * 10, planted * 40)
            paced_planted = max(planted, 50)  # enough samples for a p99
            paced_feed = generate_feed(
                messages=size,
                patients=max(patients // 10, paced_planted * 4),
                planted=paced_planted,
                seed=29,
                start=start,
                oru_topic=paced.kafka.topics[0],
                rde_topic=paced.kafka.topics[1],
            )
            print(f"bench: paced run at {rate} msg/s ({size} messages)", flush=True)
            result |= asyncio.run(latency(paced, paced_feed, rate))
    finally:
        if broker is not None:
            broker.stop()
    result["database"] = "sqlite" if is_sqlite(database_url) else "postgresql"
    result["broker"] = _broker_name(bootstrap_servers, broker_kind)
    result |= seeded
    return result


def _broker_name(bootstrap_servers: str | None, kind: str) -> str:
    if bootstrap_servers:
        return "external"
    return f"apache-kafka-{KAFKA_VERSION}" if kind == "kafka" else "tansu"


def main_json(result: dict[str, Any]) -> str:
    return json.dumps(result, sort_keys=True)
