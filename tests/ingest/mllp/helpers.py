"""An MLLP client the way an interface engine behaves, HL7 builders, and a running gateway."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aiokafka import AIOKafkaConsumer

from service.ingest.consumer import kafka_options
from service.ingest.mllp import serve_mllp
from service.ingest.topics import ensure_topics
from service.runtime.settings import Settings, load_settings
from service.tools.broker import EmbeddedBroker, free_port

VT, FS, CR = b"\x0b", b"\x1c", b"\r"


def frame(message: bytes) -> bytes:
    return VT + message + FS + CR


def oru(control_id: str, mrn: str = "MRN1001", version: str = "2.5.1") -> bytes:
    return (
        f"MSH|^~\\&|LABSYS|GH_LAB|LABSENTINEL|GH|20250101120000||ORU^R01^ORU_R01|{control_id}|P|"
        f"{version}\rPID|1||SSN999^^^SSA^SS~{mrn}^^^GH^MR||DOE^JANE||19500101|F\r"
        "OBR|1||FIL1|2777-1^Phosphate^LN\r"
        "OBX|1|NM|2777-1^Phosphate^LN||1.2|mg/dL|2.5-4.5|L|||F|||20250101110000\r"
    ).encode()


def rde(control_id: str, mrn: str = "MRN1001") -> bytes:
    return (
        f"MSH|^~\\&|PHARM|GH|LABSENTINEL|GH|20250101120000||RDE^O11^RDE_O11|{control_id}|P|2.5.1\r"
        f"PID|1||{mrn}^^^GH^MR||DOE^JANE||19500101|F\r"
        "ORC|NW|ORD1\rRXE|^^^20250101120000|FERRIC CARBOXYMALTOSE|750||mg\r"
    ).encode()


def fields_of(ack: bytes) -> dict[str, list[str]]:
    """Segment name → fields of its first occurrence (index n is field n; MSH shifted)."""
    assert ack.startswith(VT) and ack.endswith(FS + CR), ack
    out: dict[str, list[str]] = {}
    for segment in ack[1:-2].decode("utf-8").split("\r"):
        if not segment:
            continue
        sep = segment[3]
        parts = segment.split(sep)
        if parts[0] == "MSH":
            parts.insert(1, sep)
        out.setdefault(parts[0], parts)
    return out


class Client:
    """One MLLP connection: send a frame, wait for its ACK (as engines do)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, tls: ssl.SSLContext | None = None) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
        return cls(reader, writer)

    async def send(self, message: bytes) -> dict[str, list[str]]:
        self.writer.write(frame(message))
        await self.writer.drain()
        return await self.read_ack()

    async def read_ack(self, timeout: float = 30) -> dict[str, list[str]]:
        ack = await asyncio.wait_for(self.reader.readuntil(FS + CR), timeout)
        return fields_of(ack)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def gateway_settings(bootstrap: str, unique: str, **kafka: Any) -> Settings:
    return load_settings(
        overrides={
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topics": [f"oru-{unique}", f"rde-{unique}"],
                "dead_letter_topic": f"dlq-{unique}",
                **kafka,
            },
            "logging": {"format": "text"},
        }
    )


async def prepare_topics(settings: Settings) -> None:
    await ensure_topics(kafka_options(settings.kafka), settings.kafka.topics)


@contextlib.asynccontextmanager
async def running_gateway(
    settings: Settings, *, tls: ssl.SSLContext | None = None, publish_timeout_s: float = 10
) -> AsyncIterator[int]:
    """serve_mllp on a free loopback port; yields the port, stops it afterwards."""
    port = free_port()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_mllp(
            settings,
            "127.0.0.1",
            port,
            stop,
            ready=ready,
            ssl=tls,
            publish_timeout_s=publish_timeout_s,
        )
    )
    ready_wait = asyncio.create_task(ready.wait())
    await asyncio.wait({task, ready_wait}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        ready_wait.cancel()
        task.result()  # raises what serve_mllp raised
    try:
        yield port
        assert not task.done(), "the gateway stopped by itself"
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def read_topic(
    broker: EmbeddedBroker, topic: str, expected: int, timeout_s: float = 30
) -> list[Any]:
    """Every record of ``topic`` (at least ``expected`` of them, or what came in time)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for items in batch.values():
                records.extend(items)
        # Anything more (a duplicate we did not expect) shows up in one more short fetch.
        for items in (await consumer.getmany(timeout_ms=300)).values():
            records.extend(items)
    finally:
        await consumer.stop()
    return records
