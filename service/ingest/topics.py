"""Topic creation and producing a feed: used by `demo`, the benchmark and the tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


async def ensure_topics(
    options: dict[str, Any],
    topics: Iterable[str],
    partitions: int = 3,
    *,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> None:
    """Create the topics that do not exist yet.

    Replication factor 1 by default (embedded and developer brokers); a replicated cluster
    passes 3 and ``min_insync_replicas`` 2, so that an ``acks="all"`` write survives one
    broker lost and is refused, not silently kept on one copy, when two are."""
    configs = {}
    if min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(min_insync_replicas)
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication_factor,
                topic_configs=configs,
            )
            for name in dict.fromkeys(topics)
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


async def produce(
    options: dict[str, Any], records: Iterable[tuple[str, bytes | None, bytes]]
) -> int:
    """Send (topic, key, value) records in order and wait until the broker has them all."""
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **options)
    await producer.start()
    count = 0
    try:
        for topic, key, value in records:
            await producer.send(topic, value=value, key=key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count
