"""The MLLP gateway: HL7 v2 over TCP from interface engines → Kafka topics, one ACK per frame.

Contract:
- Each MLLP frame (VT … FS CR) is one message. Frames on one connection are handled one at a
  time, in arrival order, so the ACKs go back in frame order and a patient's messages reach
  the topic in the order the engine sent them. Connections are independent.
- AA only after the broker acknowledged the write (``acks="all"``; idempotent producer where
  the broker supports it). AE when the broker did not accept it within ``publish_timeout_s``
  or refused it for a reason a resend may fix: the engine resends, and the pipeline's dedupe
  on sender + MSH-10 makes a record written twice harmless. AR (with an ERR naming the
  reason, never a field value) for a frame that is not HL7, of a type we have no topic for,
  or larger than ``kafka.max_message_bytes`` (read no further than its first 4 KB).
- No frame closes the connection or stops the server. A frame cut off by the peer closing is
  not answered (there is no one to answer) and not published.
- ``stop``: the listener closes, idle connections close, a frame being published gets its
  ACK first; then the producer flushes and stops.
- Logs carry control ids (and peer addresses), never message content. Metric labels are
  bounded: message types (``metrics.MESSAGE_TYPES``), ACK codes, publish outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl as ssl_module
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    UnknownError,
    UnsupportedVersionError,
)
from prometheus_client import Counter, Gauge, Histogram

from parsers.config import ParserConfig
from service.ingest.consumer import kafka_options
from service.ingest.mllp_ack import (
    Accepted,
    FrameReader,
    Oversized,
    Refused,
    build_ack,
    inspect_frame,
    refuse_oversized,
    topic_for,
)
from service.ingest.staging import printable
from service.runtime.metrics import REGISTRY, normalise_message_type
from service.runtime.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_PUBLISH_TIMEOUT_S = 10.0
READ_CHUNK = 64 * 1024
ACK_CODES = ("AA", "AE", "AR")
PUBLISH_OUTCOMES = ("ok", "error")

frames_received = Counter(
    "labsentinel_mllp_frames_total",
    "MLLP frames received, by message type (unparsed: not HL7 or oversized).",
    ["message_type"],
    registry=REGISTRY,
)
acks_sent = Counter(
    "labsentinel_mllp_acks_total",
    "HL7 ACKs sent by the MLLP gateway, by acknowledgement code.",
    ["code"],
    registry=REGISTRY,
)
publish_seconds = Histogram(
    "labsentinel_mllp_publish_seconds",
    "Time from a frame's arrival to the broker's acknowledgement (or giving up), by outcome.",
    ["outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
open_connections = Gauge(
    "labsentinel_mllp_connections",
    "MLLP connections open now.",
    registry=REGISTRY,
)


def identity_config(settings: Settings) -> ParserConfig:
    """What routing a message needs of the parser settings: the accepted patient identifiers
    (for the record key) and the hospital time zone; no catalogs."""
    return ParserConfig(
        identifier_types=settings.patient.identifier_types,
        identifier_authorities=settings.patient.identifier_authorities,
        timezone=settings.hospital.zone,
    )


def prime_mllp_metrics() -> None:
    """Create every label set at zero."""
    for message_type in ("ORU^R01", "RDE^O11", "RAS^O17", "other", "unparsed"):
        frames_received.labels(message_type)
    for code in ACK_CODES:
        acks_sent.labels(code)
    for outcome in PUBLISH_OUTCOMES:
        publish_seconds.labels(outcome)


class PublishFailed(Exception):
    """The broker did not take the record: ``code`` is the ACK to send (AE or AR)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Publisher:
    """One idempotent ``acks="all"`` producer, started on first use and again after failing.

    The server answers even while the broker is down: each frame waits at most ``timeout_s``
    for the producer to start and its record to be acknowledged. A broker that refuses
    idempotent producers (InitProducerId: Tansu 0.6, Kafka with an ACL lacking
    IdempotentWrite) gets a plain ``acks="all"`` producer and one warning; retries then may
    write a record twice, which the pipeline's dedupe absorbs.
    """

    def __init__(self, options: dict[str, Any], timeout_s: float, max_bytes: int) -> None:
        self._options = options
        self._timeout_s = timeout_s
        # Room for the key and the record batch overhead above the largest accepted message.
        self._max_request = max_bytes + 64 * 1024
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Task[AIOKafkaProducer] | None = None

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Write one record and wait for the broker's acknowledgement. Raises PublishFailed."""
        try:
            async with asyncio.timeout(self._timeout_s):
                producer = self._producer or await self._started()
                delivered = await producer.send(topic, value=value, key=key)
                await delivered
        except TimeoutError:
            # A record already handed to the producer may still land later; the engine's
            # resend then makes a second copy, which the pipeline's dedupe absorbs.
            raise PublishFailed("AE", "broker did not accept the message in time") from None
        except (MessageSizeTooLargeError, RecordTooLargeError):
            raise PublishFailed("AR", "message larger than the broker accepts") from None
        except KafkaError as exc:
            raise PublishFailed("AE", f"broker error {type(exc).__name__}") from None

    async def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
        if self._producer is not None:
            await self._producer.stop()  # flushes what is in flight
            self._producer = None

    async def _started(self) -> AIOKafkaProducer:
        # One start attempt at a time, shared by every frame waiting; a frame that times out
        # leaves the attempt running for the next one (shield).
        if self._starting is None or (self._starting.done() and self._producer is None):
            self._starting = asyncio.create_task(self._start())
            self._starting.add_done_callback(_retrieve)
        return await asyncio.shield(self._starting)

    async def _start(self) -> AIOKafkaProducer:
        try:
            producer = await self._start_one(idempotent=True)
        except (UnknownError, UnsupportedVersionError, ClusterAuthorizationFailedError) as exc:
            log.warning(
                "the broker refused an idempotent producer (%s): publishing with acks=all "
                "without idempotence; duplicates from retries are de-duplicated downstream",
                type(exc).__name__,
            )
            producer = await self._start_one(idempotent=False)
        self._producer = producer
        return producer

    async def _start_one(self, *, idempotent: bool) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=idempotent,
            max_request_size=self._max_request,
            **self._options,
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        return producer


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # read here, so a failed start is never "never retrieved"


class Gateway:
    """Serves connections: frames → ``inspect_frame`` → publish → ACK."""

    def __init__(self, settings: Settings, publisher: Publisher) -> None:
        kafka = settings.kafka
        self._topics = kafka.topics
        self._max_bytes = kafka.max_message_bytes
        self._publisher = publisher
        self._config = identity_config(settings)
        self._idle: set[asyncio.Task[Any]] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection, until the peer closes it or the gateway stops. Never raises."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        open_connections.inc()
        peer = writer.get_extra_info("peername")
        frames = FrameReader(self._max_bytes)
        try:
            while not self._stopping:
                self._idle.add(task)
                try:
                    data = await reader.read(READ_CHUNK)
                finally:
                    self._idle.discard(task)
                if not data:
                    if frames.pending:
                        log.warning("mllp: %s closed the connection inside a frame", peer)
                    break
                for frame in frames.feed(data):
                    writer.write(await self.answer(frame))
                    await writer.drain()
                    if self._stopping:
                        break
        except asyncio.CancelledError:
            pass  # stop while idle
        except (ConnectionError, ssl_module.SSLError) as exc:
            log.info("mllp: connection from %s ended: %s", peer, type(exc).__name__)
        except Exception:
            log.exception("mllp: connection from %s failed", peer)
        finally:
            open_connections.dec()
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def answer(self, frame: bytes | Oversized) -> bytes:
        """The framed ACK of one frame, after publishing it when it is HL7. Never raises."""
        started = time.perf_counter()
        if isinstance(frame, Oversized):
            verdict: Accepted | Refused = refuse_oversized(frame.head, self._max_bytes)
        else:
            verdict = inspect_frame(frame, self._config)
        if isinstance(verdict, Refused):
            frames_received.labels("unparsed").inc()
            log.warning(
                "mllp: AR for control id %r: %s", printable(verdict.control_id)[:64], verdict.reason
            )
            return self._ack(verdict, "AR", verdict.reason, verdict.code, verdict.location)
        frames_received.labels(normalise_message_type(verdict.message_type)).inc()
        assert isinstance(frame, bytes)
        topic = topic_for(self._topics, verdict.topic_index)
        try:
            await self._publisher.publish(topic, verdict.key, frame)
        except PublishFailed as exc:
            publish_seconds.labels("error").observe(time.perf_counter() - started)
            log.warning(
                "mllp: %s for control id %r: %s",
                exc.code,
                printable(verdict.control_id)[:64],
                exc.reason,
            )
            return self._ack(verdict, exc.code, exc.reason, "207", "")
        publish_seconds.labels("ok").observe(time.perf_counter() - started)
        log.debug("mllp: control id %r published to %s", printable(verdict.control_id)[:64], topic)
        return self._ack(verdict, "AA", "", "", "")

    async def close(self, grace_s: float) -> None:
        """Close idle connections, give busy ones ``grace_s`` to send their ACK."""
        self._stopping = True
        for task in list(self._idle):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()

    def _ack(
        self, verdict: Accepted | Refused, code: str, reason: str, error: str, where: str
    ) -> bytes:
        acks_sent.labels(code).inc()
        return build_ack(
            verdict.reply,
            code,
            verdict.control_id,
            ack_id=uuid.uuid4().hex[:20],  # MSH-10 is at most 20 characters before v2.7
            now=datetime.now(UTC),
            reason=reason,
            error_code=error,
            location=where,
        )


async def serve_mllp(
    settings: Settings,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    ready: asyncio.Event | None = None,
    ssl: ssl_module.SSLContext | None = None,
    publish_timeout_s: float = DEFAULT_PUBLISH_TIMEOUT_S,
) -> None:
    """Run the MLLP gateway on ``host:port`` until ``stop`` is set.

    Publishes to ``settings.kafka.topics`` (ORU → the first, RDE/RAS/ADT → the second) with
    the connection options the consumer uses (``kafka_options``: TLS, SASL). ``ssl`` makes
    the listener speak TLS. ``ready`` is set once the listener accepts connections. Raises
    OSError when the address cannot be bound; a broker that is down is not an error here
    (frames get AE until it is back).
    """
    prime_mllp_metrics()
    publisher = Publisher(
        kafka_options(settings.kafka), publish_timeout_s, settings.kafka.max_message_bytes
    )
    gateway = Gateway(settings, publisher)
    server = await asyncio.start_server(gateway.handle, host, port, ssl=ssl)
    addresses = ", ".join(str(s.getsockname()) for s in server.sockets)
    log.info("mllp: listening on %s%s", addresses, " (TLS)" if ssl else "")
    try:
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        server.close()
        await gateway.close(grace_s=publish_timeout_s + 1)
        await server.wait_closed()
        await publisher.close()
        log.info("mllp: stopped")
