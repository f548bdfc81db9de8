"""Hypothesis strategies that build HL7 messages with known ground truth.

Values are escaped with hl7apy's own encoder (``TextualDataType.to_er7``), so the decoder in
parsers.encoding is checked against an independent implementation. hl7apy's encoder leaves an
escape character alone when a letter of HNFSTRE and another escape character follow it (it
takes it for an existing sequence), so plain values here never contain those capital letters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo

from hl7apy.base_datatypes import ST
from hypothesis import strategies as st

from parsers.encoding import Delimiters

# Candidate delimiters: printable, not alphanumeric, not blank, not used in numbers/timestamps,
# and not "_" (MSH-9.3 message structures such as ORU_R01 contain it).
POOL = "|^~\\&!#$%*@/:;?'`{}[]"
STANDARD = ("|", "^", "~", "\\", "&")

PLAIN_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyz"
    "ABCDGIJKLMOPQUVWXYZ"  # capitals without H N F S T R E (see module docstring)
    "0123456789 .-<>=" + POOL + "éµ"
)

plain = st.text(PLAIN_ALPHABET, max_size=10)
plain_nonblank = st.text(PLAIN_ALPHABET, min_size=1, max_size=10).filter(lambda s: s.strip())


@st.composite
def delimiters(draw: st.DrawFn) -> Delimiters:
    """Standard |^~\\& half the time, else five distinct characters from POOL."""
    if draw(st.booleans()):
        return Delimiters(*STANDARD)
    chars = draw(st.permutations(POOL))[:5]
    return Delimiters(*chars)


def escape(value: str, d: Delimiters) -> str:
    """ER7-encode ``value`` with hl7apy's encoder."""
    enc = {
        "FIELD": d.field,
        "COMPONENT": d.component,
        "SUBCOMPONENT": d.subcomponent,
        "REPETITION": d.repetition,
        "ESCAPE": d.escape,
    }
    return str(ST(value).to_er7(enc))


@st.composite
def timestamps(draw: st.DrawFn, tz: tzinfo) -> tuple[str, datetime]:
    """An HL7 DTM text and the aware datetime it means (local ``tz`` when no offset)."""
    dt = draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2035, 12, 31)))
    digits = draw(st.sampled_from([4, 6, 8, 10, 12, 14, 15, 16, 17, 18]))
    textual = dt.strftime("%Y%m%d%H%M%S")[: min(digits, 14)]
    keep = (min(digits, 14) - 4) // 2  # how many of month..second are given
    given = [dt.month, dt.day, dt.hour, dt.minute, dt.second][:keep]
    month, day, hour, minute, second = given + [1, 1, 0, 0, 0][keep:]
    micro = 0
    if digits > 14:
        frac = f"{dt.microsecond:06d}"[: digits - 14]
        textual += "." + frac
        micro = int(frac.ljust(6, "0"))
    zone = tz
    if draw(st.booleans()):
        minutes = draw(st.integers(-12 * 4, 14 * 4)) * 15
        sign = "-" if minutes < 0 else "+"
        textual += f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
        zone = timezone(timedelta(minutes=minutes))
    value = datetime(dt.year, month, day, hour, minute, second, micro, tzinfo=zone)
    return textual, value


@dataclass
class Built:
    """A generated message: its CR-separated text plus the ground truth of what went in."""

    text: str
    d: Delimiters
    truth: dict[str, object] = field(default_factory=dict)


def join(parts: list[str], sep: str) -> str:
    """Join components, dropping empty trailing ones (as senders do)."""
    while parts and parts[-1] == "":
        parts = parts[:-1]
    return sep.join(parts)
