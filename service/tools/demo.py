"""`labsentinel demo`: the whole daemon on its embedded defaults, start to finish.

Starts the embedded broker and a SQLite database in a scratch folder, publishes a synthetic
feed with planted interaction cases, runs the real daemon (consumer + dispatcher) until the
feed is consumed and every page delivered, prints the pages on the console and a check of
planted cases against pages, and stops cleanly. Exit 0 when every planted case was paged.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.bootstrap import build_app
from service.daemon import run_until_consumed
from service.ingest.consumer import kafka_options
from service.ingest.topics import ensure_topics, produce
from service.runtime.clock import MessageClock
from service.runtime.settings import Settings, load_settings
from service.tools.broker import EmbeddedBroker
from service.tools.feedgen import Feed, generate_feed

# The demo serves no web pages (it stops once the feed is consumed), so its pages' ack links
# must not point at a port that looks real: ".invalid" never resolves (RFC 6761), and the note
# printed with the pages says where the links work.
DEMO_BASE_URL = "http://ack-links-need-labsentinel-run.invalid"
DEMO_LINK_NOTE = (
    f"Ack links in these pages point at {DEMO_BASE_URL}: the demo serves no web pages. "
    "`labsentinel run` serves them at api.base_url."
)


def run_demo(
    *,
    messages: int = 2000,
    planted: int = 5,
    seed: int = 7,
    workdir: Path | None = None,
    timeout_s: float = 120.0,
) -> int:
    workdir = workdir or Path(tempfile.mkdtemp(prefix="labsentinel-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pages_out = workdir / "pages.jsonl"
    start = (datetime.now(UTC) - timedelta(days=36)).replace(second=0, microsecond=0)
    feed = generate_feed(messages=messages, planted=planted, seed=seed, start=start, garbage=3)
    print(f"LabSentinel demo — working folder {workdir}")
    with EmbeddedBroker() as broker:
        settings = load_settings(
            overrides={
                "database": {"url": f"sqlite:///{workdir / 'labsentinel.db'}"},
                "kafka": {
                    "bootstrap_servers": broker.bootstrap_servers,
                    "group_id": "labsentinel-demo",
                    # The embedded broker holds a new group's first join for about half of
                    # this; 6 s is the smallest a Kafka broker accepts by default.
                    "session_timeout_ms": 6000,
                },
                # An ephemeral port: the demo must not fail because 8080 is taken. Its own
                # strong secrets, as `run` requires (service.runtime.secrets_policy); they
                # live as long as the demo, like its database.
                "api": {
                    "port": 0,
                    "ack_secret": secrets.token_urlsafe(32),
                    "base_url": DEMO_BASE_URL,
                },
                "patient": {"log_hash_salt": secrets.token_urlsafe(32)},
            }
        )
        print(
            f"embedded broker on {broker.bootstrap_servers}; publishing {len(feed.records)} "
            f"messages with {len(feed.planted)} planted interaction cases"
        )
        print(DEMO_LINK_NOTE + "\n")
        ok = asyncio.run(_run(settings, feed, pages_out, timeout_s))
    return _report(feed, pages_out, ok)


async def _run(settings: Settings, feed: Feed, pages_out: Path, timeout_s: float) -> bool:
    options = kafka_options(settings.kafka)
    await ensure_topics(options, [*settings.kafka.topics, settings.kafka.dead_letter_topic])
    await produce(options, ((r.topic, r.key, r.value) for r in feed.records))
    # The feed spans five weeks played in seconds: judge each message at its own send time.
    app = build_app(settings, pages_out=pages_out, clock=MessageClock())
    try:
        await run_until_consumed(app, len(feed.records), timeout_s)
        return True
    except TimeoutError as exc:
        print(f"demo: {exc}")
        return False
    finally:
        app.close()


def _report(feed: Feed, pages_out: Path, finished: bool) -> int:
    pages = []
    if pages_out.exists():
        pages = [json.loads(line) for line in pages_out.read_text().splitlines() if line]
    paged = {
        (p["patient"]["id"], p["analyte"])
        for p in pages
        if p["event"] in ("alert", "update") and p["severity"] in ("high", "critical")
    }
    print("\nPlanted case check:")
    missed = 0
    for case in feed.planted:
        hit = (case.patient_id, case.analyte) in paged
        missed += not hit
        mark = "PAGED " if hit else "MISSED"
        print(
            f"  {mark} {case.patient_id} {case.analyte:<10} {case.severity:<8} {case.description}"
        )
    print(
        f"\n{len(pages)} notifications written to {pages_out}; "
        f"{len(feed.planted) - missed}/{len(feed.planted)} planted cases paged."
    )
    if not finished:
        print("demo timed out before the feed was fully processed")
    return 0 if finished and missed == 0 else 1
