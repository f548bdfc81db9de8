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
    # One consumer of the group (it never subscribes, so never joins) and one admin client
    # for all the questions.
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **options)
    admin = AIOKafkaAdminClient(**options)
    await consumer.start()
    try:
        answering = await _started(admin)
        partitions = await _partitions(admin if answering else None, consumer, topics)
        fetched = await _admin_offsets(admin, group) if answering else None
        if fetched is None:
            fetched = {}
            for tp in partitions:
                fetched[tp] = await consumer.committed(tp) or 0
        ends = await consumer.end_offsets(partitions)
        return {tp: fetched.get(tp, 0) for tp in partitions}, ends
    finally:
        await admin.close()
        await consumer.stop()


async def _started(admin: AIOKafkaAdminClient) -> bool:
    try:
        await admin.start()
        return True
    except KafkaError:
        return False


async def _partitions(
    admin: AIOKafkaAdminClient | None, consumer: AIOKafkaConsumer, topics: list[str]
) -> list[TopicPartition]:
    if admin is not None:
        try:
            described = await admin.describe_topics(topics)
            return sorted(
                TopicPartition(topic["topic"], partition["partition"])
                for topic in described
                for partition in topic["partitions"]
            )
        except KafkaError:  # Tansu: from the consumer's view of the cluster instead
            pass
    await consumer.topics()
    return sorted(
        TopicPartition(topic, partition)
        for topic in topics
        for partition in consumer.partitions_for_topic(topic) or ()
    )


async def _admin_offsets(
    admin: AIOKafkaAdminClient, group: str
) -> dict[TopicPartition, int] | None:
    try:
        fetched = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in fetched.items() if meta.offset >= 0}
    except KafkaError:
        return None
