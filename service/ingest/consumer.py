"""The Kafka consumer: fetch a batch → pipeline (in a thread) → dead-letter topic → commit.

Contract (arroyo/aiokafka style):
- Offsets are committed only after every message of the batch has a durable outcome: its
  effects committed in the database, or its dead-letter row. Messages that produce nothing
  (ignored, duplicates, dead letters) are committed too, so the stream moves on.
- A batch is stored in one transaction, batches one at a time and in fetch order. While one
  is stored (worker thread), the next is parsed (event loop), and the previous one's offsets
  are committed while the next is stored.
- No message stops the stream. Whatever staging or storing a batch raises, other than
  ``DatabaseUnavailable``, the batch is processed again message by message (``fallback``). A
  message the pipeline cannot even dead-letter, while the database answers ``SELECT 1``, is
  *unrecorded*: its only durable copy is then the dead-letter topic, which must accept it
  before its offset is committed (retried until it does, or until stop, in which case
  nothing more is committed and the process exits non-zero to re-read it).
- A database outage pauses the assigned partitions (the group membership and heartbeats stay
  alive), seeks back to the first offsets of the batch in flight (and of the batch fetched
  after it), and resumes once ``SELECT 1`` works. Nothing is skipped.
  ``database.outage_max_s`` > 0 turns a long outage into a loud exit.
- Fatal, and so propagated out of ``run`` to stop the process loudly: errors of the broker
  that no retry fixes (``getmany``: authorisation, unknown topic with auto-create off, offset
  out of range without a reset policy; a commit refused for a reason other than a rebalance or
  a retriable broker error), an outage longer than ``database.outage_max_s``, and an
  unrecorded message still without a dead-letter topic copy when ``stop`` is set. Everything
  a single record or batch can cause is not fatal.
- A failed commit after a rebalance, or a retriable broker error while committing, is logged
  and passed over: the partition's next owner (or our next commit) re-reads from the last
  committed offset, and the database's de-duplication makes the re-read harmless.
- The steps have their own modules and contracts: the pipeline (``stage_batch`` on the loop,
  ``store_batch`` in a worker thread), ``fallback`` (message by message), ``dead_letter_topic``
  (the copies on the topic) and ``offsets`` (what is committed, seeking back, lag).
- Records reach the pipeline as the broker delivered them: no decoding, no copy, no size
  check here (``pipeline.max_message_bytes`` is the pipeline's, before it decodes).
- ``stop`` (SIGTERM) ends the loop after the batch in flight is stored and committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.helpers import create_ssl_context
from sqlalchemy.engine import Engine

from service.db.engine import database_reachable
from service.ingest.dead_letter_topic import DeadLetterTopic, UnrecordedMessageError
from service.ingest.fallback import UNRECORDED, process_each
from service.ingest.membership import GroupMembership
from service.ingest.messages import DatabaseUnavailable, Incoming, Outcome, Processed
from service.ingest.offsets import Offsets
from service.ingest.pipeline import Pipeline
from service.ingest.staging import Staged
from service.runtime import metrics
from service.runtime.settings import KafkaSettings

log = logging.getLogger(__name__)

# The vocabulary of the consumer's callers (replay, daemon, tools, tests).
__all__ = [
    "UNRECORDED",
    "Consumer",
    "ConsumerState",
    "UnrecordedMessageError",
    "kafka_options",
    "process_each",
]


@dataclass
class _InFlight:
    """A fetched batch whose transaction is running."""

    records: list[tuple[TopicPartition, Any]]
    stored: asyncio.Task[list[Processed]]


def _incoming(tp: TopicPartition, record: Any) -> Incoming:
    return Incoming(
        raw=record.value or b"",
        source="kafka",
        topic=tp.topic,
        partition=tp.partition,
        offset=record.offset,
    )


@dataclass
class ConsumerState:
    """What /readyz and the demo need to know."""

    connected: bool = False
    joined: bool = False  # a member of the consumer group (``membership``)
    assigned: int = 0
    database_ok: bool = True
    records: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    notifications: int = 0
    first_fetch_at: float | None = None  # perf_counter of the first non-empty fetch
    last_commit_at: float | None = None  # perf_counter of the latest offset commit


def kafka_options(settings: KafkaSettings) -> dict[str, Any]:
    """Connection options shared by consumer, producer and admin client (TLS, SASL)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=settings.ssl_cafile,
            certfile=settings.ssl_certfile,
            keyfile=settings.ssl_keyfile,
        )
    if settings.sasl_mechanism:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = (
            settings.sasl_password.get_secret_value() if settings.sasl_password else None
        )
    return options


class Consumer:
    def __init__(
        self,
        settings: KafkaSettings,
        pipeline: Pipeline,
        engine: Engine,
        outage_max_s: float = 0,
        on_notifications: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.engine = engine
        self.outage_max_s = outage_max_s
        self.on_notifications = on_notifications  # e.g. wake the dispatcher
        self.state = ConsumerState()
        self.offsets = Offsets()
        self._dead_letters: DeadLetterTopic | None = None  # once the producer has started

    async def run(self, stop: asyncio.Event) -> None:
        options = kafka_options(self.settings)
        consumer = AIOKafkaConsumer(
            group_id=self.settings.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self.settings.auto_offset_reset,
            session_timeout_ms=self.settings.session_timeout_ms,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            fetch_max_bytes=self.settings.fetch_max_bytes,
            max_partition_fetch_bytes=self.settings.max_partition_fetch_bytes,
            **options,
        )
        # The listener marks the group joined even with no partition (a standby is ready).
        consumer.subscribe(list(self.settings.topics), listener=GroupMembership(self.state))
        producer = AIOKafkaProducer(acks="all", **options)
        self._dead_letters = DeadLetterTopic(producer, self.settings.dead_letter_topic)
        await consumer.start()
        await producer.start()
        self.state.connected = True
        log.info("consumer started", extra={"topics": list(self.settings.topics)})
        in_flight: _InFlight | None = None
        try:
            while not stop.is_set():
                in_flight = await self._step(consumer, in_flight, stop)
                self.offsets.update_lag(consumer)
            if in_flight is not None:  # stopping: store and commit the batch in flight
                await self._settle(consumer, in_flight, stop)
        finally:
            self.state.connected = self.state.joined = False
            await consumer.stop()
            await producer.stop()
            log.info("consumer stopped")

    async def _step(
        self,
        consumer: AIOKafkaConsumer,
        in_flight: _InFlight | None,
        stop: asyncio.Event,
    ) -> _InFlight | None:
        """Fetch and parse the next batch while the previous one is stored; return the batch
        now being stored.

        Batches are stored one at a time and in fetch order, and a batch's offsets are
        committed only after its transaction. Parsing (pure, on this thread) overlaps the
        previous batch's transaction (on the worker thread), and committing the previous
        batch's offsets overlaps the next transaction.
        """
        batch = await consumer.getmany(
            # With a batch in flight, take only what is already fetched: waiting here would
            # delay committing it.
            timeout_ms=0 if in_flight else self.settings.fetch_timeout_ms,
            max_records=self.settings.max_batch_records,
        )
        self.state.assigned = len(consumer.assignment())
        records = [(tp, record) for tp, recs in batch.items() for record in recs]
        items = [_incoming(tp, record) for tp, record in records]
        staged: list[Staged] | None = []
        started = time.perf_counter()
        if records:
            if self.state.first_fetch_at is None:
                self.state.first_fetch_at = started
            staged = self._stage(items)
        parsing = time.perf_counter() - started
        previous: list[Processed] | None = None
        if in_flight is not None:
            previous = await self._stored(consumer, in_flight, records, stop)
            if previous is None:  # the database went away: these records are read again too
                return None
        next_flight = None
        if records:
            task = asyncio.create_task(self._store(items, staged, parsing))
            next_flight = _InFlight(records, task)
        if in_flight is not None and previous is not None:
            # Committing the offsets overlaps the next batch's transaction.
            await self._finish(consumer, in_flight.records, previous, stop)
        return next_flight

    async def _settle(
        self,
        consumer: AIOKafkaConsumer,
        in_flight: _InFlight,
        stop: asyncio.Event,
    ) -> None:
        """Wait for the batch in flight and commit its offsets (on stopping)."""
        results = await self._stored(consumer, in_flight, [], stop)
        if results is not None:
            await self._finish(consumer, in_flight.records, results, stop)

    async def _stored(
        self,
        consumer: AIOKafkaConsumer,
        in_flight: _InFlight,
        fetched: list[tuple[TopicPartition, Any]],
        stop: asyncio.Event,
    ) -> list[Processed] | None:
        """The results of the batch in flight. On a database outage (nothing of it stored),
        seek back to it and to ``fetched`` (read after it), wait for the database, and
        return None."""
        try:
            return await in_flight.stored
        except DatabaseUnavailable:
            self.offsets.seek_back(consumer, in_flight.records + fetched)
            await self._wait_for_database(consumer, stop)
            return None

    def _stage(self, items: list[Incoming]) -> list[Staged] | None:
        """The batch staged, or None when staging raised (the store step then processes the
        batch message by message). Never raises."""
        try:
            return self.pipeline.stage_batch(items)
        except Exception as exc:  # a parser bug: the store step isolates the message
            log.error(
                "staging a batch failed; processing it message by message",
                extra={"error": type(exc).__name__, "messages": len(items)},
            )
            return None

    async def _store(
        self, items: list[Incoming], staged: list[Staged] | None, parsing: float
    ) -> list[Processed]:
        """Results of the batch, one per item. Raises DatabaseUnavailable only."""
        started = time.perf_counter()
        results = await asyncio.to_thread(self._store_blocking, items, staged)
        metrics.processing_seconds.observe(parsing + time.perf_counter() - started)
        return results

    def _store_blocking(
        self, items: list[Incoming], staged: list[Staged] | None
    ) -> list[Processed]:
        if staged is not None:
            try:
                return self.pipeline.store_batch(staged)
            except DatabaseUnavailable:
                if not database_reachable(self.engine):
                    raise
                # Reported as an outage while the database answers: a message's fault.
                log.error(
                    "storing a batch failed with the database reachable; "
                    "processing it message by message",
                    extra={"error": "DatabaseUnavailable", "messages": len(items)},
                )
            except Exception as exc:  # the pipeline's own fallback failed: isolate each
                log.error(
                    "storing a batch failed; processing it message by message",
                    extra={"error": type(exc).__name__, "messages": len(items)},
                )
        return process_each(self.pipeline, self.engine, items)

    async def _finish(
        self,
        consumer: AIOKafkaConsumer,
        records: list[tuple[TopicPartition, Any]],
        results: list[Processed],
        stop: asyncio.Event,
    ) -> None:
        """Publish the batch's dead letters to the topic, then commit its offsets.

        Raises UnrecordedMessageError (fatal) when an unrecorded message could not be
        published before ``stop``, and KafkaError for a commit no retry fixes.
        """
        if not records:
            return
        self._count(records, results)
        assert self._dead_letters is not None
        for (tp, record), result in zip(records, results, strict=True):
            if result.outcome is not Outcome.DEAD_LETTER:
                continue
            if result.error_class == UNRECORDED:
                await self._dead_letters.publish_unrecorded(tp, record, result, stop)
            else:
                await self._dead_letters.publish(tp, record, result)
        if self.on_notifications and any(r.notifications for r in results):
            self.on_notifications()  # stored, so deliverable whether or not the commit works
        if await self.offsets.commit(consumer, records):
            self.state.last_commit_at = time.perf_counter()

    def _count(self, records: list[tuple[TopicPartition, Any]], results: list[Processed]) -> None:
        """Outcome counters of a batch: summed here, then one increment per label set."""
        consumed: Counter[tuple[str, str, str]] = Counter()
        for (tp, _record), result in zip(records, results, strict=True):
            outcome = result.outcome
            consumed[(tp.topic, result.message_type, outcome.value)] += 1
            self.state.outcomes[outcome.value] += 1
            if outcome is Outcome.DEAD_LETTER:
                metrics.dead_letters.labels(result.error_class or "processing").inc()
            for error_class in result.item_dead_letters:  # items dead-lettered one by one
                metrics.dead_letters.labels(error_class).inc()
            for n in result.notifications:
                self.state.notifications += 1
                metrics.alerts_total.labels(n.rule, n.severity, n.event).inc()
        self.state.records += len(results)
        for (topic, message_type, outcome_value), count in consumed.items():
            label = metrics.normalise_message_type(message_type or "unparsed")
            if outcome_value == Outcome.DEAD_LETTER.value and not message_type:
                label = "unparsed"  # a dead letter that never parsed
            metrics.messages_consumed.labels(topic, label, outcome_value).inc(count)

    async def _wait_for_database(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Pause all partitions until the database answers; keep the group membership."""
        self.state.database_ok = False
        metrics.database_errors.inc()
        metrics.consumer_paused.set(1)
        paused = consumer.assignment()
        consumer.pause(*paused)
        log.error("database unavailable; consumption paused")
        started, delay = time.monotonic(), 0.5
        try:
            while not stop.is_set():
                if await asyncio.to_thread(database_reachable, self.engine):
                    break
                if self.outage_max_s and time.monotonic() - started > self.outage_max_s:
                    raise RuntimeError("database unavailable for longer than outage_max_s")
                # getmany on paused partitions returns nothing but keeps the poll loop alive,
                # so the group does not evict us during a long outage.
                await consumer.getmany(timeout_ms=int(delay * 1000))
                delay = min(delay * 2, 10.0)
        finally:
            consumer.resume(*[tp for tp in paused if tp in consumer.assignment()])
            metrics.consumer_paused.set(0)
        self.state.database_ok = True
        log.info("database reachable again; consumption resumed")
