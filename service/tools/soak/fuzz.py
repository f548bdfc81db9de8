"""Bad input through the whole pipeline: mutation fuzzing of HL7 messages.

``mutate`` corrupts one message (pure); ``fuzz_pipeline`` pushes mutants interleaved with a
good feed through ``Pipeline.process_batch`` and checks that nothing raises, every dead letter
has its row, reason and offset, and every planted case still pages. tests/fuzz runs it small,
`labsentinel soak --fuzz` at scale.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from alerts.identity import split_patient_key
from service.bootstrap import build_app
from service.ingest.pipeline import Incoming, Outcome
from service.runtime.clock import MessageClock
from service.runtime.settings import load_settings
from service.tools.feedgen import generate_feed

_BOGUS_DATES = (
    b"20251399",
    b"00000000",
    b"99991231235959",
    b"2025-01-01",
    b"",
    b"2",
    b"20250229",
    b"202501011261",
    b"19000101000000+9999",
    b"-1",
)
_BOGUS_VALUES = (
    b"abc",
    b"NaN",
    b"inf",
    b"-0",
    b"1e309",
    b"99999999999999999999999",
    b"<",
    b">=",
    b"1.2.3",
    b"\xff\xfe",
    b"0x10",
    b"",
    b"^^^",
    b"1,5",
)
_BOGUS_UNITS = (b"furlongs", b"mg/dl/", b"", b"MMOL", b"\xb5mol/L", b"mg%", b"g/L", b"??")
_SEPARATOR_SWAPS = (
    (b"|", b"^"),
    (b"|", b","),
    (b"^", b"|"),
    (b"\r", b"\n"),
    (b"\r", b""),
    (b"|", b"\t"),
    (b"~", b"|"),
)
_OBX_5 = re.compile(rb"(OBX\|[^|]*\|[^|]*\|[^|]*\|[^|]*\|)[^|]*")
_OBX_6 = re.compile(rb"(OBX(?:\|[^|\r]*){5}\|)[^|\r]*")
_TIMESTAMP = re.compile(rb"\b\d{12,14}(?:[+-]\d{4})?\b")


def mutate(raw: bytes, rng: Any) -> bytes:
    """One random corruption of an HL7 message (pure; ``rng`` is a random.Random)."""
    segments = raw.split(b"\r")
    kind = rng.randrange(16)
    if kind == 0:  # truncated anywhere
        return raw[: rng.randrange(len(raw) + 1)]
    if kind == 1:  # wrong separators
        old, new = rng.choice(_SEPARATOR_SWAPS)
        return raw.replace(old, new)
    if kind == 2:  # binary junk spliced in
        at = rng.randrange(len(raw) + 1)
        return raw[:at] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))) + raw[at:]
    if kind == 3:  # a 1 MB field
        fields = raw.split(b"|")
        fields[rng.randrange(len(fields))] = b"A" * 1_000_000
        return b"|".join(fields)
    if kind == 4:  # wrong types in OBX-5
        return _OBX_5.sub(lambda m: m.group(1) + rng.choice(_BOGUS_VALUES), raw, count=1)
    if kind == 5:  # bogus dates
        return _TIMESTAMP.sub(lambda m: rng.choice(_BOGUS_DATES), raw)
    if kind == 6:  # unknown units (OBX-6)
        return _OBX_6.sub(lambda m: m.group(1) + rng.choice(_BOGUS_UNITS), raw)
    if kind == 7:  # enormous OBX counts
        obx = [s for s in segments if s.startswith(b"OBX")]
        if obx:
            return b"\r".join(segments + obx[:1] * rng.choice((500, 2000, 5000)))
        return raw * 50
    if kind == 8:  # a segment dropped
        if len(segments) > 1:
            del segments[rng.randrange(len(segments))]
        return b"\r".join(segments)
    if kind == 9:  # segments shuffled
        rng.shuffle(segments)
        return b"\r".join(segments)
    if kind == 10:  # bytes flipped
        data = bytearray(raw)
        for _ in range(rng.randrange(1, 12)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 11:  # other encodings, MLLP framing inside, NULs
        return rng.choice(
            [
                raw.decode("latin-1").encode("utf-16"),
                b"\x0b" + raw + b"\x1c\r",
                raw.replace(b"|", b"|\x00", 3),
                b"\x0b\x1c\r" * 3,
            ]
        )
    if kind == 12:  # empty or blank
        return rng.choice([b"", b"\r\r\r", b"   ", b"MSH", b"MSH|", b"MSH|^~\\&"])
    if kind == 13:  # a field emptied or made huge in repetitions
        fields = raw.split(b"|")
        i = rng.randrange(len(fields))
        fields[i] = rng.choice([b"", b"~" * 1000, b"^" * 1000, b"\\" * 50, b"&&&&"])
        return b"|".join(fields)
    if kind == 14:  # escapes gone wrong
        return raw.replace(b"^", rng.choice([b"\\S\\", b"\\X0D\\", b"\\Z", b"\\"]), 5)
    # two mutations at once
    return mutate(mutate(raw, rng), rng)


@dataclass
class FuzzReport:
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letter_rows: int = 0
    planted: int = 0
    paged: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and self.paged == self.planted


def fuzz_pipeline(
    count: int, *, seed: int = 0, database_url: str, batch: int = 100, good_every: int = 10
) -> FuzzReport:
    """Push ``count`` mutated messages through Pipeline.process_batch with good messages (a feed
    with planted cases) interleaved; check that nothing raises, that every dead letter is in
    the table with a reason and its offset, and that every planted case still pages.

    Mutants are made from background messages only (never a planted patient's), so a mutant
    cannot legitimately suppress a page. Problems are reported, not raised. Blocking.
    """
    started = time.monotonic()
    rng = random.Random(seed)
    report = FuzzReport()
    goods = max(200, count // good_every)
    feed = generate_feed(
        messages=goods,
        patients=max(60, goods // 5),
        planted=4,
        seed=seed + 1,
        start=datetime(2025, 1, 6, tzinfo=UTC),
        garbage=0,
    )
    planted_ids = [c.patient_id.encode() for c in feed.planted]
    sources = [
        r.value
        for r in feed.records
        if r.kind != "garbage" and not any(p in r.value for p in planted_ids)
    ]
    good = list(feed.records)
    settings = load_settings(
        overrides={"database": {"url": database_url}, "routing": {"default_channels": []}}
    )
    app = build_app(settings, clock=MessageClock())
    offset = 0
    paged: set[tuple[str, str]] = set()
    try:
        pipeline = app.pipeline
        n_mutants = expected_rows = 0
        while n_mutants < count or good:
            items: list[Incoming] = []
            while len(items) < batch and (n_mutants < count or good):
                # Good messages spread evenly among the mutants, the rest after them.
                share_of_good = len(good) / max(1, len(good) + count - n_mutants)
                take_good = good and (n_mutants >= count or rng.random() < share_of_good)
                if take_good:
                    raw = good.pop(0).value
                else:
                    raw = rng.choice(sources)
                    if rng.random() < 0.5:  # a fresh MSH-10, so that it is not a mere duplicate
                        raw = raw.replace(b"|P|2.5.1", b"X%d|P|2.5.1" % n_mutants, 1)
                    raw = mutate(raw, rng)
                    n_mutants += 1
                items.append(
                    Incoming(raw=raw, source="kafka", topic="fuzz", partition=0, offset=offset)
                )
                offset += 1
            try:
                results = pipeline.process_batch(items)
            except Exception as exc:
                report.problems.append(f"process_batch raised {type(exc).__name__}: {exc!s:.200}")
                continue
            for item, result in zip(items, results, strict=True):
                report.outcomes[result.outcome.value] += 1
                # One row per dead-lettered message, plus one per item dead-lettered alone.
                expected_rows += (result.outcome is Outcome.DEAD_LETTER) + len(
                    result.item_dead_letters
                )
                if result.outcome is Outcome.DEAD_LETTER and not (
                    result.reason and result.error_class
                ):
                    report.problems.append(f"dead letter without a reason at {item.offset}")
                for n in result.notifications:
                    if n.event == "alert":
                        paged.add((split_patient_key(n.patient_id)[0], str(n.analyte)))
        report.inputs = n_mutants
        with app.engine.connect() as connection:
            rows = connection.execute(
                text('SELECT "offset", reason, error_class FROM dead_letters')
            ).all()
        report.dead_letter_rows = len(rows)
        if len(rows) != expected_rows:
            report.problems.append(
                f"{report.outcomes['dead_letter']} messages and their items dead-lettered "
                f"({expected_rows} rows expected), {len(rows)} rows in the table"
            )
        if any(not r.reason or not r.error_class or r.offset is None for r in rows):
            report.problems.append("dead-letter rows without reason, class or offset")
        planted = {(c.patient_id, c.analyte) for c in feed.planted}
        report.planted, report.paged = len(planted), len(planted & paged)
    finally:
        app.close()
    report.seconds = time.monotonic() - started
    return report
