"""Offset bookkeeping of the consumer: what a batch commits, seeking back, and the lag gauge.

Contract (what may block, what it commits):
- ``commit`` commits, per partition still assigned, the offset after the batch's last
  record: call it only once every record of the batch has a durable outcome (its effects or
  its dead-letter row committed, or an unrecorded message on the dead-letter topic). Messages
  that produced nothing (ignored, duplicates) carry their offsets forward too, so the stream
  moves on. It awaits the group coordinator.
- A commit refused after a rebalance, or with a retriable broker error, is logged and passed
  over (returns False): the partition's next owner, or our next commit, re-reads from the
  last committed offset, and the database's de-duplication makes the re-read harmless. A
  commit refused for any other reason (not authorised for the group) raises ``KafkaError``.
- ``seek_back`` and ``update_lag`` only move the client's positions and set a gauge; they
  neither block nor commit.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from service.runtime import metrics

log = logging.getLogger(__name__)

Records = list[tuple[TopicPartition, Any]]


class Offsets:
    def __init__(self) -> None:
        self.positions: dict[TopicPartition, int] = {}  # committed: next offset, per partition

    async def commit(self, consumer: AIOKafkaConsumer, records: Records) -> bool:
        """Commit the offsets after ``records`` (see the module doc); True when committed."""
        offsets: dict[TopicPartition, int] = {}
        for tp, record in records:
            offsets[tp] = max(offsets.get(tp, -1), record.offset + 1)
        assigned = consumer.assignment()
        # A partition revoked by a rebalance since the fetch is not ours to commit (aiokafka
        # refuses the whole commit with IllegalStateError); its new owner re-reads it.
        owned = {tp: OffsetAndMetadata(o, "") for tp, o in offsets.items() if tp in assigned}
        if not owned:
            return False
        try:
            await consumer.commit(owned)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced under us; the new owner re-reads these messages and the
            # database's de-duplication makes that harmless.
            log.warning(
                "offset commit failed after a rebalance; messages will be re-read",
                extra={"error": type(exc).__name__},
            )
            return False
        except KafkaError as exc:
            if not exc.retriable:
                raise  # e.g. not authorised for the group: no retry will fix it
            log.warning(
                "offset commit failed; the next commit covers these messages",
                extra={"error": type(exc).__name__},
            )
            return False
        self.positions.update({tp: m.offset for tp, m in owned.items()})
        return True

    @staticmethod
    def seek_back(consumer: AIOKafkaConsumer, records: Records) -> None:
        """Move each partition back to its first offset in ``records``: they are read again."""
        first: dict[TopicPartition, int] = {}
        for tp, record in records:
            first.setdefault(tp, record.offset)
        for tp, offset in first.items():
            consumer.seek(tp, offset)

    def update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """The lag gauge: high water minus our last committed offset, per partition."""
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            position = self.positions.get(tp)
            if highwater is not None and position is not None:
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(
                    max(highwater - position, 0)
                )
