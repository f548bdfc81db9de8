"""A group's committed offsets and lag, on both brokers: through the admin API on Apache
Kafka, through a non-joining member on Tansu (which cannot answer the admin request)."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from service.ingest.group_offsets import committed_offsets, group_lag
from service.ingest.topics import ensure_topics

pytestmark = pytest.mark.kafka


async def test_committed_offsets_and_lag_follow_what_the_group_committed(broker, unique) -> None:
    options = {"bootstrap_servers": broker.bootstrap_servers}
    topic, group = f"lag-{unique}", f"group-{unique}"
    await ensure_topics(options, [topic], partitions=2)
    # Five records on partition 0, three on partition 1.
    records = [(topic, None, f"m{i}".encode()) for i in range(8)]
    await produce_to(options, records[:5], partition=0)
    await produce_to(options, records[5:], partition=1)

    assert await group_lag(options, group, [topic]) == 8  # nothing committed yet

    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await consumer.commit({TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 1})
    finally:
        await consumer.stop()

    offsets = await committed_offsets(options, group, [topic])
    assert offsets == {TopicPartition(topic, 0): 4, TopicPartition(topic, 1): 1}
    assert await group_lag(options, group, [topic]) == 3


async def produce_to(options, records, *, partition: int) -> None:  # type: ignore[no-untyped-def]
    producer = AIOKafkaProducer(acks="all", **options)
    await producer.start()
    try:
        for topic, key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()
