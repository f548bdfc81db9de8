"""Hostile characters in every field the parsers read, on SQLite and PostgreSQL.

NUL, other C0 controls, DEL, C1 controls, invalid UTF-8 (lone continuation bytes, a lone lead
byte, an encoded surrogate, 0xFF), the noncharacters U+FFFE/U+FFFF and bidi controls are put
into one field (or one component of PID-3) of an otherwise valid ORU, RDE, RAS or ADT^A40.
Property: processing never raises, the message ends STORED, IGNORED, DUPLICATE or DEAD_LETTER
(a dead letter with a reason and a row), and the database stays usable: a clean message
processed right after is stored. PostgreSQL is the database that refuses NUL in text.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from service.bootstrap import App
from service.ingest.pipeline import Incoming, Outcome
from tests.fuzz.conftest import make_app

AT = b"20250110080000"
# One valid message of each kind the parsers read; fields are |-separated, segments CR.
TEMPLATES: dict[str, list[bytes]] = {
    "ORU": [
        b"MSH|^~\\&|LAB|GENERAL HOSPITAL|LABSENTINEL|GH|" + AT + b"||ORU^R01^ORU_R01|{id}|P|2.5.1",
        b"PID|1||MRN10000001^^^GH^MR||SYNTHETIC^FUZZ||19600101|F",
        b"PV1|1|I|4W^101^A^GH||||||MED",
        b"ORC|RE|ORD1|FIL1",
        b"OBR|1|ORD1|FIL1|PHOS^Phosphate^L|||" + AT,
        b"OBX|1|NM|2777-1^Phosphate^LN|1|1.9|mg/dL|2.5-4.5|L|||F|||" + AT,
    ],
    "RDE": [
        b"MSH|^~\\&|PHARM|GENERAL HOSPITAL|LABSENTINEL|GH|"
        + AT
        + b"||RDE^O11^RDE_O11|{id}|P|2.5.1",
        b"PID|1||MRN10000001^^^GH^MR||SYNTHETIC^FUZZ||19600101|F",
        b"PV1|1|I|4W^101^A^GH||||||MED",
        b"ORC|NW|RX1|RX1F||IP||||" + AT + b"|||1234567^DOC^ALPHA^^^^^^NPI|||" + AT,
        b"RXE|^^^" + AT + b"|1435169^Ferric carboxymaltose 750 mg/15 mL^RXNORM|750||mg|||||||||IV",
        b"RXR|IV",
        b"TQ1|1||||||" + AT + b"|" + AT,
    ],
    "RAS": [
        b"MSH|^~\\&|PHARM|GENERAL HOSPITAL|LABSENTINEL|GH|"
        + AT
        + b"||RAS^O17^RAS_O17|{id}|P|2.5.1",
        b"PID|1||MRN10000001^^^GH^MR||SYNTHETIC^FUZZ||19600101|F",
        b"PV1|1|I|4W^101^A^GH||||||MED",
        b"ORC|RE|RX2|RX2F||CM||||" + AT,
        b"RXA|0|1|" + AT + b"|" + AT + b"|993452^Prolia 60 mg/mL^RXNORM|60|mg|||||||||||||CP",
        b"RXR|SC",
    ],
    "A40": [
        b"MSH|^~\\&|ADT|GENERAL HOSPITAL|LABSENTINEL|GH|" + AT + b"||ADT^A40^ADT_A39|{id}|P|2.5.1",
        b"EVN|A40|" + AT,
        b"PID|1||MRN10000001^^^GH^MR||SYNTHETIC^FUZZ||19600101|F",
        b"MRG|MRN10000009^^^GH^MR",
    ],
}
# (segment, field, component or 0 for the whole field): every field the parsers read.
TARGETS: list[tuple[str, int, int]] = [
    *[("MSH", f, 0) for f in (3, 4, 7, 9, 10, 12)],
    *[("PID", 3, c) for c in (1, 4, 5)],
    ("PV1", 3, 0), ("PV1", 10, 0),
    *[("OBR", f, 0) for f in (2, 3, 7)],
    *[("OBX", f, 0) for f in (2, 3, 4, 5, 6, 7, 8, 11, 14)],
    *[("ORC", f, 0) for f in (1, 2, 3, 9, 12, 15)],
    *[("RXE", f, 0) for f in (1, 2, 3, 5, 13)],
    ("RXR", 1, 0),
    ("TQ1", 7, 0), ("TQ1", 8, 0),
    *[("RXA", f, 0) for f in (3, 4, 5, 6, 7, 20)],
    ("MRG", 1, 0),
]  # fmt: skip
HOSTILE: list[bytes] = [
    b"\x00", b"\x01", b"\x07", b"\x08", b"\x0b", b"\x1b", b"\x1c", b"\x1f", b"\x7f",
    "\u0080".encode(), "\u0085".encode(), "\u009b".encode(), "\u009f".encode(),  # C1
    b"\x80", b"\xbf", b"\xc3", b"\xff", b"\xed\xa0\x80",  # invalid UTF-8
    "\ufffe".encode(), "\uffff".encode(),  # noncharacters
    "\u202e".encode(), "\u202d".encode(), "\u2066".encode(), "\u2069".encode(),
    "\u200f".encode(),  # bidi controls
]  # fmt: skip
_ids = itertools.count(1)


def build(kind: str, target: tuple[str, int, int], insert: bytes, where: int, replace: bool):
    """The template of ``kind`` with ``insert`` put into the target field (or component):
    replacing it, or at position ``where`` of its current value."""
    segment, number, component = target
    control_id = f"FZ{next(_ids):07d}".encode()
    lines = [line.replace(b"{id}", control_id) for line in TEMPLATES[kind]]
    for i, line in enumerate(lines):
        fields = line.split(b"|")
        if fields[0] != segment.encode():
            continue
        index = number - 1 if segment == "MSH" else number  # MSH-1 is the separator itself
        fields += [b""] * (index + 1 - len(fields))
        parts = fields[index].split(b"^") if component else [fields[index]]
        slot = component - 1 if component else 0
        parts += [b""] * (slot + 1 - len(parts))
        old = parts[slot]
        cut = where % (len(old) + 1)
        parts[slot] = insert if replace else old[:cut] + insert + old[cut:]
        fields[index] = b"^".join(parts)
        lines[i] = b"|".join(fields)
    return b"\r".join(lines) + b"\r"


def applicable(kind: str, target: tuple[str, int, int]) -> bool:
    return any(line.startswith(target[0].encode()) for line in TEMPLATES[kind])


CASES = [(k, t) for k in TEMPLATES for t in TARGETS if applicable(k, t)]


@pytest.fixture
def injection_app(database_url: str) -> Iterator[App]:
    built = make_app(database_url)
    try:
        yield built
    finally:
        built.close()


def clean_oru() -> bytes:
    return build("ORU", ("OBX", 5, 0), b"3.1", 0, True)


def check(app: App, raw: bytes) -> None:
    """The property: no exception, a known outcome, a dead letter has its row, and a clean
    message right after is stored (the database and its connections are still usable)."""
    offset = next(_ids)
    result = app.pipeline.process(Incoming(raw, "kafka", "inject", 0, offset))
    assert result.outcome in {Outcome.STORED, Outcome.IGNORED, Outcome.DUPLICATE,
                              Outcome.DEAD_LETTER}  # fmt: skip
    with app.engine.connect() as connection:
        rows = connection.execute(
            text('SELECT reason, error_class FROM dead_letters WHERE "offset" = :o'),
            {"o": offset},
        ).all()
    if result.outcome is Outcome.DEAD_LETTER:
        assert result.reason and result.error_class and rows
    for row in rows:
        assert row.reason and row.error_class
    after = app.pipeline.process(Incoming(clean_oru(), "kafka", "inject", 0, next(_ids)))
    assert after.outcome is Outcome.STORED


@pytest.mark.slow
@settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    case=st.sampled_from(CASES),
    insert=st.lists(st.sampled_from(HOSTILE), min_size=1, max_size=4).map(b"".join),
    where=st.integers(min_value=0, max_value=40),
    replace=st.booleans(),
)
@example(case=("ORU", ("MSH", 10, 0)), insert=b"\x00", where=2, replace=False)
@example(case=("RDE", ("MSH", 10, 0)), insert=b"\x00\xff", where=0, replace=True)
@example(case=("ORU", ("OBX", 5, 0)), insert=b"\x00", where=1, replace=False)
@example(case=("ORU", ("PID", 3, 1)), insert=b"\x00", where=3, replace=False)
@example(case=("A40", ("MRG", 1, 0)), insert=b"\x00", where=3, replace=False)
def test_hostile_characters_in_any_read_field_never_stop_processing(
    injection_app: App, case: tuple[str, tuple[str, int, int]], insert: bytes, where: int,
    replace: bool,
) -> None:  # fmt: skip
    kind, target = case
    check(injection_app, build(kind, target, insert, where, replace))


@pytest.mark.slow
def test_nul_in_each_read_field_never_stops_processing(injection_app: App) -> None:
    """Exhaustively, once per field: a NUL, a C1 control and a noncharacter in its value."""
    for kind, target in CASES:
        check(injection_app, build(kind, target, b"\x00" + "\u0085\uffff".encode(), 1, False))


def test_the_clean_templates_are_stored(injection_app: App) -> None:
    """The injections hit messages that are stored when clean (not ignored anyway)."""
    for kind in TEMPLATES:
        raw = build(kind, ("MSH", 12, 0), b"", 0, False)
        result = injection_app.pipeline.process(Incoming(raw, "replay"))
        assert result.outcome is Outcome.STORED, (kind, result)
