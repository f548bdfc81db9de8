"""Synthetic hospital HL7 v2.5.1 feed: background traffic plus planted interaction cases.

Used by `labsentinel demo`, the integration tests, `labsentinel replay` examples and the
throughput benchmark. Generation is deterministic for a given seed and start and renders
messages from string templates (hl7apy is the test oracle, not the generator).

    feed = generate_feed(messages=10_000, seed=7, start=datetime(2025, 1, 1, tzinfo=UTC))
    write_feed_file(feed, Path("feed.hl7"))
"""

from service.tools.feedgen.generator import generate_feed
from service.tools.feedgen.hl7 import escape, unescape
from service.tools.feedgen.model import Feed, FeedRecord, PlantedCase, feed_summary, write_feed_file
from service.tools.feedgen.planted import VARIANTS

__all__ = [
    "VARIANTS",
    "Feed",
    "FeedRecord",
    "PlantedCase",
    "escape",
    "feed_summary",
    "generate_feed",
    "unescape",
    "write_feed_file",
]
