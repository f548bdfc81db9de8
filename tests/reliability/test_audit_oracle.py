"""The fault audit's "no message skipped" oracle agrees with the pipeline it judges.

``audit.expected_messages`` predicts, without a database, which messages of a feed leave a
processed_messages row (the pipeline's pure first step decides the ignored ones and the dead
letters). If it predicted too few, a skipped message would go unnoticed; too many, and every
scenario would fail. Here the whole feed goes through the real pipeline once, in order, on
both databases, and the prediction must equal the table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from service.bootstrap import build_app
from service.ingest.messages import Incoming
from service.runtime.clock import MessageClock
from service.runtime.settings import load_settings
from service.tools.feedgen import generate_feed
from service.tools.soak.audit import expected_messages


def test_expected_messages_equal_what_the_pipeline_records(database_url: str) -> None:
    start = (datetime.now(UTC) - timedelta(days=36)).replace(second=0, microsecond=0)
    feed = generate_feed(
        messages=400, patients=60, planted=2, seed=5, start=start, garbage=5, duplicates=0.05
    )
    settings = load_settings(
        overrides={"database": {"url": database_url}, "routing": {"default_channels": []}}
    )
    app = build_app(settings, clock=MessageClock())
    try:
        app.pipeline.process_batch(
            [
                Incoming(raw=r.value, topic=r.topic, partition=0, offset=i)
                for i, r in enumerate(feed.records)
            ]
        )
        with app.engine.connect() as connection:
            recorded = set(
                connection.execute(
                    text("SELECT sending_facility, control_id FROM processed_messages")
                ).all()
            )
    finally:
        app.close()
    expected = expected_messages(feed.records)
    assert {tuple(row) for row in recorded} == expected
    # Not vacuous: the feed has messages the pipeline ignores, duplicates and garbage, none
    # of which may be expected on their own.
    kinds = {r.kind for r in feed.records}
    assert {"rde-other", "duplicate", "garbage"} <= kinds
    assert len(expected) < sum(1 for r in feed.records if r.kind not in ("garbage", "duplicate"))
