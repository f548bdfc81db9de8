"""`labsentinel replay`: files of HL7 messages through the consumer's pipeline, in file order.

Then every page that is due is delivered, and a one-line summary is printed. The exit status
is 0 also when messages were dead-lettered (they are in the dead-letter table with reasons);
it is non-zero when the run itself could not be done (bad config, database down) and when a
message could be neither processed nor dead-lettered ("not recorded" in the summary: the rest
of the files is still processed and paged, and the file is the message's copy).

Messages reach the pipeline as ``split_messages`` cut them, undecoded: the size limit
(``pipeline.max_message_bytes``) is the pipeline's, applied before anything decodes a message.
Replay itself decodes only the first segment of each message, at most ``HEADER_BYTES``, to
find its time.

With ``--clock messages`` (the default) the scheduled work of the daemon - monitoring
reminders (``service.notify.prevention.run_reminders``) and escalations
(``service.notify.escalation.run_escalations``) - runs against the message clock: each time the
message time crosses a day boundary (hospital time zone) and at the end of each file, at the
clock's high water. Batches are cut right after the message that crosses, so what is due is a
function of the file alone: the same reminders and escalations on every run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Protocol, TextIO

from sqlalchemy.engine import Engine

from parsers import split_messages
from parsers.framing import decode_message, split_segments
from parsers.header import parse_header
from service.db.engine import database_reachable
from service.ingest.fallback import UNRECORDED, process_each
from service.ingest.messages import DatabaseUnavailable, Incoming, Outcome, Processed
from service.ingest.pipeline import Pipeline
from service.notify.dispatcher import Dispatcher, DispatchStats
from service.notify.escalation import run_escalations
from service.notify.prevention import run_reminders
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock, MessageClock, WallClock
from service.runtime.settings import Settings

# How much of a message replay reads to find its MSH-7; a longer MSH is left to the pipeline.
HEADER_BYTES = 64 * 1024


@dataclass
class ReplaySummary:
    messages: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    notifications: int = 0
    delivery: DispatchStats = field(default_factory=DispatchStats)
    pending: int = 0
    seconds: float = 0.0
    unrecorded: int = 0  # neither processed nor dead-lettered (see the module docstring)
    held: bool = False  # a rehearsal (--no-deliver): deliveries went to the held transport

    def line(self) -> str:
        rate = self.messages / self.seconds if self.seconds > 0 else 0.0
        not_recorded = f", {self.unrecorded} NOT RECORDED" if self.unrecorded else ""
        return (
            f"replay: {self.messages} messages "
            f"({self.outcomes[Outcome.STORED]} stored, {self.outcomes[Outcome.IGNORED]} ignored, "
            f"{self.outcomes[Outcome.DUPLICATE]} duplicate, "
            f"{self.outcomes[Outcome.DEAD_LETTER] - self.unrecorded} dead-lettered"
            f"{not_recorded}), "
            f"{self.notifications} notifications, "
            f"{self.delivery.delivered} deliveries {'held' if self.held else 'sent'}, "
            f"{self.delivery.failed} failed, "
            f"{self.pending} pending; {self.seconds:.2f} s ({rate:,.0f} msg/s)"
        )


def make_clock(mode: str) -> Clock:
    """The pipeline clock of ``--clock``: "messages" (MSH-7 drives time) or "wall"."""
    return MessageClock() if mode == "messages" else WallClock()


class ReplayApp(Protocol):
    """What a replay runs on: the application ``service.bootstrap.build_app`` wires."""

    settings: Settings
    clinical: Clinical
    engine: Engine
    pipeline: Pipeline
    dispatcher: Dispatcher


def replay_files(
    paths: list[Path],
    app: ReplayApp,
    *,
    batch_size: int = 500,
    progress: Callable[[str, int, int], None] | None = None,
) -> ReplaySummary:
    """Replay ``paths`` through ``app`` (built by the caller with ``make_clock``'s clock),
    then deliver what is due. Blocks; the caller closes ``app``.

    Raises DatabaseUnavailable when the database is down. ``progress(file name, messages
    done, messages in the file)`` is called after each batch.
    """
    clock = app.pipeline.clock
    message_clock = clock if isinstance(clock, MessageClock) else None
    zone = app.clinical.parser.timezone
    summary = ReplaySummary()
    started = time.perf_counter()
    for path in paths:
        messages = split_messages(path.read_bytes())
        days = _DayBoundaries(zone) if message_clock else None
        for first, chunk, crossed in _batches(messages, batch_size, days):
            items = [
                Incoming(raw=raw, source="replay", topic=path.name, offset=first + index)
                for index, raw in enumerate(chunk)
            ]
            for result in _process(app, items):
                summary.messages += 1
                summary.outcomes[result.outcome] += 1
                summary.unrecorded += result.error_class == UNRECORDED
                summary.notifications += len(result.notifications)
            if crossed and message_clock is not None:
                summary.notifications += run_scheduled(app, message_clock.high_water())
            if progress is not None:
                progress(path.name, first + len(chunk), len(messages))
        if message_clock is not None and messages:  # the end of the file
            summary.notifications += run_scheduled(app, message_clock.high_water())
    summary.delivery = asyncio.run(_deliver(app))
    summary.pending = app.dispatcher.pending_counts().get("pending", 0)
    summary.seconds = time.perf_counter() - started
    return summary


def _process(app: ReplayApp, items: list[Incoming]) -> list[Processed]:
    """The batch through the pipeline; if the batch raises, message by message, so that one
    message the pipeline cannot handle neither stops the replay nor hides the others.
    Raises DatabaseUnavailable while the database does not answer ``SELECT 1``."""
    try:
        return app.pipeline.process_batch(items)
    except DatabaseUnavailable:
        if not database_reachable(app.engine):
            raise
    except Exception:  # process_each logs the class of what each message raises
        pass
    # Raised while the database answers: find the message at fault, process the others.
    return process_each(app.pipeline, app.engine, items)


class ProgressBar:
    """``[#####-----]  45% 45,000/100,000 msgs  3,210 msg/s  ETA 17 s`` on one terminal line."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.started: dict[str, float] = {}

    def __call__(self, name: str, done: int, total: int) -> None:
        started = self.started.setdefault(name, time.perf_counter())
        elapsed = max(time.perf_counter() - started, 1e-9)
        rate = done / elapsed
        share = done / total if total else 1.0
        filled = int(self.width * share)
        eta = (total - done) / rate if rate > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(
            f"\r{name} [{bar}] {share:4.0%} {done:,}/{total:,} msgs "
            f"{rate:,.0f} msg/s ETA {eta:,.0f} s  "
        )
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


async def _deliver(app: ReplayApp) -> DispatchStats:
    try:
        return await app.dispatcher.drain()
    finally:
        await app.dispatcher.close()


def run_scheduled(app: ReplayApp, now: datetime) -> int:
    """The daemon's scheduled jobs at ``now`` (the message clock): monitoring reminders, then
    escalations. Returns how many notifications they queued. Blocks."""
    delivery = app.pipeline.delivery
    reminders = run_reminders(app.engine, app.clinical, now, delivery=delivery)
    escalations = run_escalations(app.engine, app.settings, now, paging=delivery.paging)
    return len(reminders.sent) + len(escalations.escalated)


class _DayBoundaries:
    """Says whether a message's time (MSH-7) moves the clock into a later local day."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.day: date | None = None  # local day of the clock's high water

    def crosses(self, raw: bytes) -> bool:
        moment = _message_time(raw, self.zone)
        if moment is None:
            return False
        day = moment.astimezone(self.zone).date()
        if self.day is None or day <= self.day:
            self.day = day if self.day is None else self.day
            return False
        self.day = day
        return True


def _message_time(raw: bytes, zone: tzinfo) -> datetime | None:
    """MSH-7 as the pipeline's parser reads it, or None (the pipeline dead-letters junk).

    Only the first segment is decoded (``split_messages`` ends segments in CR), and only
    when it fits in ``HEADER_BYTES``: a huge record is not decoded here. Never raises.
    """
    try:
        end = raw.find(b"\r", 0, HEADER_BYTES)
        if end < 0:
            if len(raw) > HEADER_BYTES:
                return None
            end = len(raw)
        segments = split_segments(decode_message(raw[:end]))
        return parse_header(segments[0], zone)[1].message_time if segments else None
    except Exception:
        return None


def _batches(
    messages: list[bytes], size: int, days: _DayBoundaries | None
) -> Iterator[tuple[int, list[bytes], bool]]:
    """(offset, messages, crossed) batches of at most ``size``; with ``days``, a batch ends
    right after a message that crosses a day boundary (``crossed`` is then True)."""
    first = 0
    chunk: list[bytes] = []
    for raw in messages:
        chunk.append(raw)
        crossed = days is not None and days.crosses(raw)
        if crossed or len(chunk) >= size:
            yield first, chunk, crossed
            first += len(chunk)
            chunk = []
    if chunk:
        yield first, chunk, False
