"""What a consumer group has committed, and how far behind the end of its topics it is.

Read through the admin API (``OffsetFetch`` for the whole group in one request, as
``kafka-consumer-groups.sh --describe`` does), which Apache Kafka answers. Tansu 0.6 answers
that request in a form aiokafka cannot decode, so where the admin request fails the offsets are
asked partition by partition by a consumer of the group that never joins it (it does not
subscribe, so it takes no partitions from the running members).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError


async def committed_offsets(
    options: dict[str, Any], group: str, topics: Iterable[str]
) -> dict[TopicPartition, int]:
    """The group's committed offset of every partition of ``topics`` (0 where none)."""
    committed, _ = await _committed_and_ends(options, group, list(topics))
    return committed


async def group_lag(options: dict[str, Any], group: str, topics: Iterable[str]) -> int:
    """Records on ``topics`` not yet committed by ``group``: end offset minus committed."""
    committed, ends = await _committed_and_ends(options, group, list(topics))
    # Tansu may report the end of a partition as the first offset of its last produce batch,
    # so a commit can be ahead of it; never count that as negative lag.
    return sum(max(ends[tp] - done, 0) for tp, done in committed.items())


async def _committed_and_ends(
    options: dict[str, Any], group: str, topics: list[str]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    # One consumer of the group for both questions (it never subscribes, so never joins).
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        partitions = await _partitions(options, consumer, topics)
        fetched = await _admin_offsets(options, group)
        if fetched is None:
            fetched = {}
            for tp in partitions:
                fetched[tp] = await consumer.committed(tp) or 0
        ends = await consumer.end_offsets(partitions)
        return {tp: fetched.get(tp, 0) for tp in partitions}, ends
    finally:
        await consumer.stop()


async def _partitions(
    options: dict[str, Any], consumer: AIOKafkaConsumer, topics: list[str]
) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**options)
    try:
        await admin.start()
        described = await admin.describe_topics(topics)
        found = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]
    except KafkaError:  # Tansu: from the consumer's view of the cluster instead
        await consumer.topics()
        found = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in consumer.partitions_for_topic(topic) or ()
        ]
    finally:
        await admin.close()
    return sorted(found)


async def _admin_offsets(options: dict[str, Any], group: str) -> dict[TopicPartition, int] | None:
    admin = AIOKafkaAdminClient(**options)
    try:
        await admin.start()
        fetched = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in fetched.items() if meta.offset >= 0}
    except KafkaError:
        return None
    finally:
        await admin.close()
