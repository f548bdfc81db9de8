"""One scenario's world: its topics, consumer group, database and feed (with planted cases).

``Run`` publishes the feed in slices, starts daemons against it, tells when the group has
committed every published record (``wait_consumed``) and audits the end state (``audit``).
Blocking; not for use inside an event loop (it runs its own for Kafka).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from service.ingest.topics import ensure_topics, produce
from service.runtime.secrets_policy import fresh_secrets_env
from service.tools.feedgen import Feed, generate_feed
from service.tools.soak.audit import Audit, audit_run
from service.tools.soak.process import DaemonProcess

SESSION_TIMEOUT_MS = 6000  # the smallest a Kafka broker accepts by default
# The ack secret and log salt `run` requires: one set per soak, so restarted daemons agree.
SOAK_SECRETS = fresh_secrets_env()


class Run:
    """Topics, consumer group and database of one scenario, and its feed."""

    def __init__(
        self,
        broker: Any,
        database_url: str,
        workdir: Path,
        *,
        messages: int,
        planted: int = 6,
        seed: int = 7,
        keyed: bool = True,
        garbage: int = 5,
        partitions: int = 3,
        replication: int = 1,
    ) -> None:
        self.broker = broker
        self.database_url = database_url
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.unique = uuid.uuid4().hex[:10]
        self.topics = [f"oru-{self.unique}", f"rde-{self.unique}"]
        self.dead_letter_topic = f"dlq-{self.unique}"
        self.group = f"soak-{self.unique}"
        self.partitions = partitions
        # A replicated cluster: 3 copies, and acks=all writes need 2 of them in sync.
        self.replication = replication
        start = (datetime.now(UTC) - timedelta(days=36)).replace(second=0, microsecond=0)
        self.feed: Feed = generate_feed(
            messages=messages,
            patients=max(200, messages // 8),
            planted=planted,
            seed=seed,
            start=start,
            garbage=garbage,
            keyed=keyed,
            oru_topic=self.topics[0],
            rde_topic=self.topics[1],
        )
        self.published = 0
        self.engine: Engine = create_engine(
            _psycopg(database_url),
            poolclass=NullPool,
            connect_args=_connect_args(database_url),
            hide_parameters=True,
        )
        self.daemons: list[DaemonProcess] = []

    # -- setup ------------------------------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "LABSENTINEL_DATABASE_URL": self.database_url,
            "LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": self.broker.bootstrap_servers,
            "LABSENTINEL_KAFKA_GROUP_ID": self.group,
            "LABSENTINEL_KAFKA_TOPICS": json.dumps(self.topics),
            "LABSENTINEL_KAFKA_DEAD_LETTER_TOPIC": self.dead_letter_topic,
            "LABSENTINEL_KAFKA_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS),
            "LABSENTINEL_KAFKA_FETCH_TIMEOUT_MS": "100",
            "LABSENTINEL_KAFKA_MAX_BATCH_RECORDS": "200",
            # The feed is five weeks old; with the wall clock its results would be backfill.
            "LABSENTINEL_CLINICAL_BACKFILL_DAYS": "365",
            "LABSENTINEL_API_PORT": "0",
            "LABSENTINEL_ROUTING_DEFAULT_CHANNELS": "[]",
            "LABSENTINEL_ROUTING_CONFIG": "",
            "LABSENTINEL_DISPATCHER_POLL_INTERVAL_S": "0.1",
            "LABSENTINEL_LOGGING_FORMAT": "json",
            # `run` refuses to start without them; one set for every daemon of the soak.
            **SOAK_SECRETS,
        }
        env.update(extra)
        return env

    def daemon(self, name: str = "a", config: Path | None = None, **env: str) -> DaemonProcess:
        process = DaemonProcess(
            env=self.env(**env),
            pages_out=self.workdir / f"pages-{name}.jsonl",
            log_path=self.workdir / f"daemon-{name}.log",
            config=config,
        )
        self.daemons.append(process)
        return process

    def publish(self, upto: int | None = None) -> int:
        """Produce the feed's records ``published:upto`` (all remaining by default)."""
        records = self.feed.records[self.published : upto]
        options = {"bootstrap_servers": self.broker.bootstrap_servers}

        async def go() -> int:
            if self.published == 0:
                await ensure_topics(
                    options,
                    [*self.topics, self.dead_letter_topic],
                    self.partitions,
                    replication_factor=self.replication,
                    min_insync_replicas=min(2, self.replication) if self.replication > 1 else None,
                )
            return await produce(options, ((r.topic, r.key, r.value) for r in records))

        self.published += asyncio.run(go())
        return self.published

    # -- progress ---------------------------------------------------------------------------

    def committed(self) -> int | None:
        """Records committed by the group (sum over partitions); None if Kafka is unreachable."""
        offsets = self.committed_offsets()
        return None if offsets is None else sum(offsets.values())

    def committed_offsets(self) -> dict[TopicPartition, int] | None:
        """The group's committed offset of each partition (0 where none); None if Kafka is
        unreachable."""

        async def go() -> dict[TopicPartition, int]:
            # A consumer that never subscribes does not join the group; it only reads the
            # group's committed offsets (Tansu does not answer the admin client's variant).
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.broker.bootstrap_servers,
                group_id=self.group,
                enable_auto_commit=False,
                request_timeout_ms=5000,
            )
            await consumer.start()
            try:
                offsets = {}
                for topic in self.topics:
                    for partition in range(self.partitions):
                        tp = TopicPartition(topic, partition)
                        offsets[tp] = max(await consumer.committed(tp) or 0, 0)
                return offsets
            finally:
                await consumer.stop()

        try:
            return asyncio.run(asyncio.wait_for(go(), 10))
        except Exception:
            return None

    def pending_outbox(self) -> int | None:
        try:
            with self.engine.connect() as connection:
                return int(
                    connection.execute(
                        text("SELECT count(*) FROM outbox WHERE status = 'pending'")
                    ).scalar_one()
                )
        except Exception:
            return None

    def wait_progress(self, above: int, timeout_s: float, process: DaemonProcess) -> int:
        """Block until the group's committed count exceeds ``above`` (the daemon is consuming);
        returns it. Raises TimeoutError, or RuntimeError if ``process`` exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            committed = self.committed() or 0
            if committed > above:
                return committed
            if not process.alive:
                raise RuntimeError(f"daemon exited; see {process.log_path}")
            time.sleep(0.1)
        raise TimeoutError(f"no progress beyond {above} committed records in {timeout_s} s")

    def wait_consumed(self, timeout_s: float, *, alive: Sequence[DaemonProcess] = ()) -> float:
        """Block until the group has committed every published record and the outbox is
        empty; returns the seconds waited. Raises TimeoutError (or RuntimeError if a daemon
        in ``alive`` exits)."""
        started = time.monotonic()
        while True:
            if self.committed() == self.published and self.pending_outbox() == 0:
                return time.monotonic() - started
            for process in alive:
                if not process.alive:
                    raise RuntimeError(f"daemon exited early; see {process.log_path}")
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(
                    f"committed {self.committed()}/{self.published}, "
                    f"outbox pending {self.pending_outbox()} after {timeout_s} s"
                )
            time.sleep(0.3)

    def stop_all(self) -> None:
        for process in self.daemons:
            if process.alive:
                process.terminate(20)

    # -- the verdict ------------------------------------------------------------------------

    def audit(self, channel: str = "pages-out") -> Audit:
        return audit_run(
            self.engine,
            pages_files=[d.pages_out for d in self.daemons],
            planted_cases=self.feed.planted,
            published=self.published,
            channel=channel,
            records=self.feed.records[: self.published],
        )

    def close(self) -> None:
        for process in self.daemons:
            if process.alive:
                process.kill()
        self.engine.dispose()


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _connect_args(url: str) -> dict[str, Any]:
    return {"connect_timeout": 3} if url.startswith("postgres") else {}
