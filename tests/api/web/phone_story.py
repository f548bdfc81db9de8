"""A patient whose chart is hard to lay out, for the timeline page tests.

Denosumab 40 days ago, IV iron 30 days ago, zoledronic acid the next day and a second iron
dose two days later (four dose labels within two weeks), then phosphates falling to the
paging range with no calcium drawn (the day 7 and day 21 checks missed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.api.context import ApiContext, Readiness
from service.bootstrap import App, build_app
from service.ingest.pipeline import Incoming
from service.runtime.clock import MessageClock
from tests.api.story import story_settings
from tests.messages import DENOSUMAB, ZOLEDRONIC, oru, rde

MRN = "MRNPHONE01"


def phone_story_messages(now: datetime) -> list[bytes]:
    day = timedelta(days=1)
    iron_at = now - 30 * day
    ca: dict[str, Any] = {"code": "17861-6", "name": "Calcium", "ref": "8.5-10.5"}
    return [
        oru(MRN, now - 80 * day, value="3.6"),
        rde(MRN, now - 40 * day, drug=DENOSUMAB, route="SC"),
        oru(MRN, iron_at - day, value="3.4"),
        oru(MRN, iron_at - day, value="9.3", **ca),
        rde(MRN, iron_at),
        rde(MRN, iron_at + day, drug=ZOLEDRONIC),
        rde(MRN, iron_at + 3 * day),
        # Phosphate only from here on: day 7 and day 21 are missed (no calcium), a paging
        # phosphate all the same.
        oru(MRN, iron_at + 7 * day, value="2.6"),
        oru(MRN, iron_at + 21 * day, value="1.8"),
        oru(MRN, now - 2 * day, value="1.3"),
    ]


@pytest.fixture
def phone_app(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[App, ApiContext]]:
    settings = story_settings(sqlite_url, tmp_path)
    app = build_app(settings, clock=MessageClock(), pages_out=tmp_path / "pages.jsonl")
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        for raw in phone_story_messages(now):
            app.pipeline.process(Incoming(raw=raw, source="replay", topic="phone.hl7"))
        with ThreadPoolExecutor(1) as pool:  # outside pytest-asyncio's loop
            pool.submit(asyncio.run, app.dispatcher.drain()).result()
        context = ApiContext(
            settings=settings,
            engine=app.engine,
            clinical=app.clinical,
            pipeline=app.pipeline,
            readiness=Readiness(),
        )
        yield app, context
    finally:
        app.close()
