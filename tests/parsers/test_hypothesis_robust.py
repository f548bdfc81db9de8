"""Whatever arrives, parse_message returns an event or raises ParseError, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from parsers import Ignored, LabReport, ParseError, PharmacyOrder, parse_message, split_messages
from tests.parsers.common import CONFIG
from tests.parsers.test_hypothesis_oracle import oru_messages, ras_messages, rde_messages

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
CORPUS = [
    raw
    for path in sorted((Path(__file__).parent / "corpus").glob("*.hl7"))
    for raw in split_messages(path.read_bytes())
]
JUNK = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x0b", b"\x1c", b"\xff", b"MSH|", b"\x00"]


def _parses_or_parse_error(raw: bytes) -> None:
    try:
        out = parse_message(raw, CONFIG)
    except ParseError as err:
        assert err.segment or err.field  # every error says where
        return
    assert isinstance(out, LabReport | PharmacyOrder | Ignored)


@SETTINGS
@given(st.binary(max_size=300))
@example(b"")  # nothing at all
@example(b"MSH")  # a bare segment name
@example(b"MSH|^~\\&")  # delimiters only
@example(b"MSH|^~\\&|||||||ORU^R01|1\rOBX|1|NM|2777-1")  # relevant OBX, no PID, no time
@example(b"MSH|^~\\&|||||||RDE^O11|1\rRXE||1435169")  # relevant RXE, no ORC
@example(b"MSH|^~\\&|||||99999999999999999999||ADT^A01|1")  # absurd timestamp
def test_random_bytes(raw: bytes) -> None:
    _parses_or_parse_error(raw)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid message (corpus or generated) damaged in a few random ways."""
    base = draw(
        st.one_of(
            st.sampled_from(CORPUS),
            oru_messages().map(lambda b: b.text.encode()),
            rde_messages().map(lambda b: b.text.encode()),
            ras_messages().map(lambda b: b.text.encode()),
        )
    )
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "insert", "delete", "replace", "swap"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.one_of(st.sampled_from(JUNK), st.binary(max_size=5)))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 20))]
        elif op == "replace" and data:
            data[pos] = draw(st.sampled_from(JUNK))[0]
        elif op == "swap" and len(data) > 8:
            data[4], data[5] = data[5], data[4]  # swap two encoding characters in MSH-2
    return bytes(data)


@pytest.mark.slow
@SETTINGS
@given(mutated())
def test_mutated_messages(raw: bytes) -> None:
    _parses_or_parse_error(raw)


@SETTINGS
@given(st.binary(max_size=500))
def test_split_messages_never_raises(data: bytes) -> None:
    # every returned message is non-empty and free of MLLP framing bytes
    for message in split_messages(data):
        assert message.strip() and b"\x0b" not in message and b"\x1c" not in message
