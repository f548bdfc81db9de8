"""An interface engine's path: MLLP gateway → topics → daemon → pages.

The synthetic feed is sent frame by frame over MLLP, as Mirth or Rhapsody would, each frame
waiting for its ACK; every planted case must page exactly once, every frame must get exactly
one ACK carrying its own control id, and an engine's resend of a frame it already sent (it
lost the ACK) must not page again.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from parsers import Ignored, parse_message
from service.bootstrap import build_app
from service.daemon import run_until_consumed
from service.ingest.consumer import kafka_options
from service.ingest.mllp import serve_mllp
from service.ingest.topics import ensure_topics
from service.runtime.clock import MessageClock
from service.tools.broker import free_port
from tests.ingest.mllp.helpers import fields_of, frame
from tests.integration.helpers import make_feed, read_pages, settings_for

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


async def _send_all(port: int, messages: list[bytes]) -> list[dict[str, list[str]]]:
    """Send each message as a frame and wait for its ACK before the next (one connection)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    acks = []
    try:
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            acks.append(fields_of(await reader.readuntil(b"\x1c\r")))
    finally:
        writer.close()
        await writer.wait_closed()
    return acks


async def test_feed_over_mllp_pages_every_planted_case_once(
    broker, sqlite_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, sqlite_url, unique)
    feed = make_feed(settings, garbage=0)
    await ensure_topics(
        kafka_options(settings.kafka), [*settings.kafka.topics, settings.kafka.dead_letter_topic]
    )
    messages = [record.value for record in feed.records]
    # The engine lost the ACK of one planted case's last message and sends it again.
    mrn = feed.planted[0].patient_id.encode()
    resent = next(
        r.value for r in reversed(feed.records) if r.kind == "oru-relevant" and mrn in r.value
    )
    messages.append(resent)

    port = free_port()
    stop, ready = asyncio.Event(), asyncio.Event()
    gateway = asyncio.create_task(serve_mllp(settings, "127.0.0.1", port, stop, ready=ready))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        acks = await _send_all(port, messages)
    finally:
        stop.set()
        await asyncio.wait_for(gateway, 30)

    # One ACK per frame, in order, each naming its own message's control id.
    assert len(acks) == len(messages)
    for ack, message in zip(acks, messages, strict=True):
        control_id = message.split(b"\r", 1)[0].split(b"|")[9].decode()
        assert ack["MSA"][1:3] == ["AA", control_id]

    pages_out = tmp_path / "pages.jsonl"
    app = build_app(settings, pages_out=pages_out, clock=MessageClock())
    try:
        daemon = await run_until_consumed(app, len(messages), timeout_s=120)
    finally:
        app.close()
    # The resend was recognised by sending facility + MSH-10 (as were the feed's own repeats of
    # relevant messages; a repeat of an irrelevant one is simply ignored again).
    seen = Counter(
        (parsed.header.sending_facility, parsed.header.control_id)
        for parsed in (parse_message(m, app.clinical.parser) for m in messages)
        if not isinstance(parsed, Ignored)
    )
    resent_header = parse_message(resent, app.clinical.parser).header
    assert seen[(resent_header.sending_facility, resent_header.control_id)] == 2
    repeats = sum(n - 1 for n in seen.values())
    assert daemon.consumer.state.outcomes["duplicate"] == repeats
    alerts = Counter(
        (p["patient"]["id"], p["analyte"]) for p in read_pages(pages_out) if p["event"] == "alert"
    )
    assert alerts == Counter({(c.patient_id, c.analyte): 1 for c in feed.planted})
