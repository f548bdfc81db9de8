"""`labsentinel replay`: files of HL7 messages through the consumer's pipeline, in file order.

Then every page that is due is delivered, and a one-line summary is printed. The exit status
is 0 also when messages were dead-lettered (they are in the dead-letter table with reasons);
it is non-zero only when the run itself could not be done (bad config, database down).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from parsers import split_messages
from service.bootstrap import App, build_app
from service.clock import Clock, MessageClock, WallClock
from service.dispatcher import DispatchStats
from service.pipeline import Incoming, Outcome
from service.settings import Settings


@dataclass
class ReplaySummary:
    messages: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    notifications: int = 0
    delivery: DispatchStats = field(default_factory=DispatchStats)
    pending: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        rate = self.messages / self.seconds if self.seconds > 0 else 0.0
        return (
            f"replay: {self.messages} messages "
            f"({self.outcomes[Outcome.STORED]} stored, {self.outcomes[Outcome.IGNORED]} ignored, "
            f"{self.outcomes[Outcome.DUPLICATE]} duplicate, "
            f"{self.outcomes[Outcome.DEAD_LETTER]} dead-lettered), "
            f"{self.notifications} notifications, "
            f"{self.delivery.delivered} deliveries sent, {self.delivery.failed} failed, "
            f"{self.pending} pending; {self.seconds:.2f} s ({rate:,.0f} msg/s)"
        )


def make_clock(mode: str) -> Clock:
    return MessageClock() if mode == "messages" else WallClock()


def replay_files(
    paths: list[Path],
    settings: Settings,
    *,
    pages_out: Path | None = None,
    clock_mode: str = "messages",
    batch_size: int = 500,
) -> ReplaySummary:
    """Raises ConfigError for bad settings and DatabaseUnavailable when the DB is down."""
    app = build_app(settings, pages_out=pages_out, clock=make_clock(clock_mode))
    summary = ReplaySummary()
    started = time.perf_counter()
    try:
        for path in paths:
            messages = split_messages(path.read_bytes())
            for first in range(0, len(messages), batch_size):
                items = [
                    Incoming(raw=raw, source="replay", topic=path.name, offset=first + index)
                    for index, raw in enumerate(messages[first : first + batch_size])
                ]
                for result in app.pipeline.process_batch(items):
                    summary.messages += 1
                    summary.outcomes[result.outcome] += 1
                    summary.notifications += len(result.notifications)
        summary.delivery = asyncio.run(_deliver(app))
        summary.pending = app.dispatcher.pending_counts().get("pending", 0)
    finally:
        app.close()
    summary.seconds = time.perf_counter() - started
    return summary


async def _deliver(app: App) -> DispatchStats:
    try:
        return await app.dispatcher.drain()
    finally:
        await app.dispatcher.close()
