"""Copies of dead letters on the dead-letter topic, for the interface team's tools.

Contract (what may block, what it commits):
- Both methods await the broker's acknowledgement (``acks="all"`` producer) and so may block
  the consumer's loop for as long as the broker takes; neither commits an offset. The consumer
  commits a batch's offsets only after ``publish`` / ``publish_unrecorded`` returned for each
  of its dead letters.
- ``publish`` is best effort and never raises: a dead letter's durable copy is its database
  row, and a broker that refuses the copy is logged, never a reason to stop the stream.
- ``publish_unrecorded`` is for a message with no database row (``fallback.UNRECORDED``): the
  topic holds its only copy, so it retries (backoff up to 10 s) until the broker has it. A
  record the broker refuses for good (larger than it accepts) is published without its value,
  so that its topic, partition and offset still say where it is. It raises
  ``UnrecordedMessageError`` when ``stop`` is set first: the caller must then not commit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from service.ingest.messages import Processed

log = logging.getLogger(__name__)

_MAX_RETRY_DELAY_S = 10.0


class UnrecordedMessageError(Exception):
    """A message has no durable copy (no database row, no dead-letter topic record) and the
    consumer is stopping: its offset must not be committed."""

    safe_message = True  # the text names a topic, partition and offset only


class DeadLetterTopic:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, tp: TopicPartition, record: Any, result: Processed) -> bool:
        """Copy a dead letter to the topic; False when the broker refused it. Never raises."""
        try:
            await self.producer.send_and_wait(
                self.topic, record.value or b"", headers=headers(tp, record.offset, result)
            )
            return True
        except Exception as exc:  # KafkaError, or a record larger than the producer allows
            log.warning(
                "dead-letter topic publish failed; the database copy is kept",
                extra={
                    "error": type(exc).__name__,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": record.offset,
                },
            )
            return False

    async def publish_unrecorded(
        self, tp: TopicPartition, record: Any, result: Processed, stop: asyncio.Event
    ) -> None:
        """Retry until the broker has the record (see the module doc). Raises
        UnrecordedMessageError when ``stop`` comes first."""
        value: bytes = record.value or b""
        extra_headers = headers(tp, record.offset, result)
        delay = 0.5
        while True:
            try:
                await self.producer.send_and_wait(self.topic, value, headers=extra_headers)
                return
            except KafkaError as exc:
                if not exc.retriable and value:
                    value = b""
                    extra_headers = [
                        *extra_headers,
                        ("labsentinel.value_withheld", b"refused by broker"),
                    ]
                    continue
                log.error(
                    "unrecorded message not yet on the dead-letter topic; retrying",
                    extra={
                        "error": type(exc).__name__,
                        "topic": tp.topic,
                        "partition": tp.partition,
                        "offset": record.offset,
                    },
                )
            if stop.is_set():
                raise UnrecordedMessageError(
                    f"message at {tp.topic}:{tp.partition}:{record.offset} has no durable "
                    "copy; its offset was not committed"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_DELAY_S)


def headers(tp: TopicPartition, offset: int, result: Processed) -> list[Any]:
    """Where the record came from and why it is a dead letter (PHI-free)."""
    # "replace": a reason or class that ever carried a lone surrogate must not make encoding,
    # and so the whole batch, fail.
    return [
        ("labsentinel.reason", result.reason.encode("utf-8", "replace")[:500]),
        ("labsentinel.error_class", result.error_class.encode("utf-8", "replace")),
        ("labsentinel.source_topic", tp.topic.encode("utf-8", "replace")),
        ("labsentinel.source_partition", str(tp.partition).encode()),
        ("labsentinel.source_offset", str(offset).encode()),
    ]
