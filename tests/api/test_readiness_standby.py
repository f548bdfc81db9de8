"""/readyz of a replica beyond the partition count: a member of the consumer group without a
partition is a healthy standby, and ready (real broker, three consumers, two partitions)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from service.api import create_app
from service.api.context import ApiContext, Readiness
from service.bootstrap import build_app
from service.ingest.consumer import Consumer, kafka_options
from service.ingest.topics import ensure_topics
from tests.integration.helpers import settings_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


class Running:
    running = True


async def readyz(context: ApiContext) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/readyz")


async def test_standby_without_partitions_is_ready(
    broker, sqlite_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, sqlite_url, unique)
    # Two topics of one partition each: two partitions for three replicas.
    options = kafka_options(settings.kafka)
    await ensure_topics(options, settings.kafka.topics, partitions=1)
    # The broker knows them before any consumer subscribes (an unknown topic is fatal).
    producer = AIOKafkaProducer(**options)
    await producer.start()
    try:
        for topic in settings.kafka.topics:
            assert await producer.partitions_for(topic) == {0}
    finally:
        await producer.stop()
    app = build_app(settings)
    consumers = [Consumer(settings.kafka, app.pipeline, app.engine) for _ in range(3)]

    def context(consumer: Consumer) -> ApiContext:
        readiness = Readiness(consumer=consumer.state, dispatcher=Running())
        return ApiContext(
            settings=settings, engine=app.engine, clinical=app.clinical, readiness=readiness
        )

    before = await readyz(context(consumers[0]))
    assert before.status_code == 503 and before.json()["failing"] == ["broker", "group"]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        # Settled: everyone joined and the two partitions are owned (one rebalance done).
        while not (
            all(c.state.connected and c.state.joined for c in consumers)
            and sum(c.state.assigned for c in consumers) == 2
        ):
            assert not any(t.done() for t in tasks), [t.exception() for t in tasks if t.done()]
            assert loop.time() < deadline, [(c.state.joined, c.state.assigned) for c in consumers]
            await asyncio.sleep(0.1)
        standbys = [c for c in consumers if c.state.assigned == 0]
        assert standbys, "three members, two partitions: one at least owns none"
        for consumer in consumers:
            response = await readyz(context(consumer))
            assert response.status_code == 200, response.text
            assert response.json()["checks"]["group"] is True
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        app.close()
    after = await readyz(context(standbys[0]))
    assert after.status_code == 503 and "group" in after.json()["failing"]
