"""The daemon end to end: a real Tansu broker, a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlmodel import Session, select

from service.bootstrap import build_app
from service.daemon import run_until_consumed
from service.db.models import DeadLetter, NotificationRow
from service.ingest.consumer import kafka_options
from service.runtime.clock import MessageClock
from tests.integration.helpers import (
    count_rows,
    make_feed,
    publish,
    read_pages,
    settings_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def planted_keys(feed) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(case.patient_id, case.analyte) for case in feed.planted}


def alert_keys(pages: list[dict]) -> Counter[tuple[str, str]]:  # type: ignore[type-arg]
    return Counter((p["patient"]["id"], p["analyte"]) for p in pages if p["event"] == "alert")


async def test_planted_cases_page_once_and_garbage_is_dead_lettered(
    broker, database_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, database_url, unique)
    feed = make_feed(settings)
    await publish(settings, feed.records)
    pages_out = tmp_path / "pages.jsonl"
    app = build_app(settings, pages_out=pages_out, clock=MessageClock())
    try:
        await run_until_consumed(app, len(feed.records), timeout_s=90)
        pages = read_pages(pages_out)
        # Every planted case paged exactly once, at the expected severity; nothing else paged.
        assert alert_keys(pages) == Counter(planted_keys(feed))
        expected = {(c.patient_id, c.analyte): c.severity for c in feed.planted}
        for page in (p for p in pages if p["event"] == "alert"):
            assert page["severity"] == expected[(page["patient"]["id"], page["analyte"])]
            assert page["rule"] == "iron-antiresorptive-mineral"
            assert page["iron"]["days_since"] >= 0
        # The garbage records are in the dead-letter table with where they came from...
        with Session(app.engine) as session:
            dead = session.exec(select(DeadLetter)).all()
        garbage = [r for r in feed.records if r.kind == "garbage"]
        assert len(dead) == len(garbage)
        for row in dead:
            assert row.reason and row.topic in settings.kafka.topics
            assert row.partition is not None and row.offset is not None
        # ... and on the dead-letter topic, with the reason in a header.
        assert await _dead_letter_topic_count(settings, len(garbage)) == len(garbage)
    finally:
        app.close()


async def test_redelivered_feed_pages_nothing_new(
    broker, sqlite_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, sqlite_url, unique)
    feed = make_feed(settings, garbage=0)
    await publish(settings, feed.records)
    pages_out = tmp_path / "pages.jsonl"
    app = build_app(settings, pages_out=pages_out, clock=MessageClock())
    try:
        await run_until_consumed(app, len(feed.records), timeout_s=90)
        first = count_rows(app.engine, NotificationRow)  # pages and order-time advisories
        assert alert_keys(read_pages(pages_out)) == Counter(planted_keys(feed))
        # The interface engine re-sends everything (same MSH-10s): nothing new happens.
        await publish(settings, feed.records)
        await run_until_consumed(app, len(feed.records), timeout_s=90)
        assert count_rows(app.engine, NotificationRow) == first
        assert len(read_pages(pages_out)) == first
    finally:
        app.close()


async def test_restarted_consumer_resumes_from_committed_offsets(
    broker, database_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, database_url, unique)
    feed = make_feed(settings, garbage=2)
    half = len(feed.records) // 2
    pages_out = tmp_path / "pages.jsonl"

    await publish(settings, feed.records[:half])
    first = build_app(settings, pages_out=pages_out, clock=MessageClock())
    try:
        await run_until_consumed(first, half, timeout_s=90)
    finally:
        first.close()

    await publish(settings, feed.records[half:])
    second = build_app(settings, pages_out=pages_out, clock=MessageClock())
    try:
        daemon = await run_until_consumed(second, len(feed.records) - half, timeout_s=90)
        # The restarted consumer read only what was new: it resumed from committed offsets.
        assert daemon.consumer.state.records == len(feed.records) - half
        assert alert_keys(read_pages(pages_out)) == Counter(planted_keys(feed))
    finally:
        second.close()


async def _dead_letter_topic_count(settings, expected: int) -> int:  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(
        settings.kafka.dead_letter_topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        **kafka_options(settings.kafka),
    )
    await consumer.start()
    seen = 0
    try:
        for _ in range(20):
            batch = await consumer.getmany(timeout_ms=250)
            for records in batch.values():
                for record in records:
                    headers = dict(record.headers)
                    assert headers["labsentinel.reason"]
                    seen += 1
            if seen >= expected:
                break
    finally:
        await consumer.stop()
    return seen
