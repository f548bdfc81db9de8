"""Two invariants over generated multi-group messages, counted from the generator.

- Conservation: every catalogued OBX, RXE and RXA of a message appears exactly once, either
  as a result/order or as a Rejected naming it. Each item carries a unique marker (OBX-1 set
  id, RXE-3 / RXA-6 amount) so that an output is traced to the item that made it, and the
  generator - never the parser - says which items are catalogued.
- Hygiene: with control characters, U+FFFE/U+FFFF, lone surrogates, bidi controls, escaped
  control bytes and invalid UTF-8 inserted into every field the parsers read, parse_message
  raises ParseError or returns events whose every string (recursively) holds none of the
  forbidden characters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from parsers import Ignored, LabReport, ParseError, PharmacyOrder, parse_message
from tests.parsers.common import CONFIG

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Catalogued in tests/parsers/common.py, and not: repeated often so that one OBR holds the
# same code several times.
LAB = {"2777-1": True, "17861-6": True, "1751-7": True, "718-7": False, "2951-2": False}
DRUGS = {
    "1435169^Ferric carboxymaltose^RXNORM": True,
    "993452^Prolia^RXNORM": True,
    "2193^Ceftriaxone^RXNORM": False,
    "313782^Acetaminophen^RXNORM": False,
}

# Raw bytes that are not UTF-8 travel through the text as private-use stand-ins.
_BYTE_BASE = 0xF0000
NASTY = [
    *(chr(c) for c in range(0x00, 0x20) if c not in (0x0A, 0x0B, 0x0D, 0x1C)),
    "\x7f",
    *(chr(c) for c in range(0x80, 0xA0)),
    "\ufffe",
    "\uffff",
    "\ud800",  # lone surrogates: encoded with surrogatepass, they are invalid UTF-8
    "\udfff",
    "\u202e",  # bidi controls: allowed, but must not disturb anything
    "\u200f",
    "\u2066",
    "\\X00\\",  # escaped control bytes decode to controls
    "\\X0D0A\\",
    "\\X1B\\",
    "\\X85\\",
    "\\XC285\\",
    "\\.br\\",
    *(chr(_BYTE_BASE + b) for b in (0x80, 0x9F, 0xC3, 0xE2, 0xED, 0xFF)),
]


def _encode(text: str) -> bytes:
    data = text.encode("utf-8", "surrogatepass")
    for b in (0x80, 0x9F, 0xC3, 0xE2, 0xED, 0xFF):
        data = data.replace(chr(_BYTE_BASE + b).encode(), bytes([b]))
    return data


def _forbidden(c: str) -> bool:
    """The characters no returned string may hold (CLINICAL.md text hygiene, written out)."""
    n = ord(c)
    return n <= 0x1F or 0x7F <= n <= 0x9F or n in (0xFFFE, 0xFFFF) or 0xD800 <= n <= 0xDFFF


def _strings(value: Any) -> list[str]:
    """Every str inside a value, through NamedTuples, tuples and lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | list):
        return [s for item in value for s in _strings(item)]
    return []


@dataclass
class Generated:
    raw: bytes
    kind: str
    # marker -> position ("OBX[3]", "RXE[2]", "RXA[1]") of every catalogued item
    catalogued: dict[str, str] = field(default_factory=dict)


@st.composite
def messages(draw: st.DrawFn, dirty: bool = False) -> Generated:
    """An ORU, RDE or RAS with several groups and unique markers (see module doc)."""

    def text(base: str = "") -> str:
        """``base`` with, when dirty, a few nasty characters inserted."""
        if not dirty or not draw(st.integers(0, 2)):
            return base
        out = base
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(out)))
            out = out[:at] + draw(st.sampled_from(NASTY)) + out[at:]
        return out

    def ts() -> str:
        choice = draw(st.integers(0, 9))
        if choice == 0:
            return ""
        if choice == 1:
            return "20241399"  # an impossible date
        day = draw(st.integers(1, 28))
        stamp = f"202403{day:02d}{draw(st.integers(0, 23)):02d}00"
        # dirt in a timestamp makes it unusable: now and then, so most items stay readable
        return stamp + text() if dirty and not draw(st.integers(0, 3)) else stamp

    kind = draw(st.sampled_from(["ORU^R01", "RDE^O11", "RAS^O17"]))
    msh7 = draw(st.sampled_from(["20240310081522", "20240310081522", ""]))
    segs = [
        f"MSH|^~\\&|{text('LIS')}|{text('HOSP')}|LS|HOSP|{msh7}||{kind}^{text('X')}|"
        f"{text('C1')}|P|2.5.1^{text()}",
        f"PID|1||{text('ID9')}^^^{text('HOSP')}^MR~{text('E1')}^^^EPI^PI||{text('NAME')}",
    ]
    if draw(st.booleans()):
        segs.append(f"PV1|1|I|{text('ICU')}^{text('7')}^2^{text('GEN')}||||||{text('CAR')}")
    out = Generated(b"", kind)
    marker = 0
    if kind == "ORU^R01":
        obx_number = 0
        for g in range(draw(st.integers(1, 4))):
            if draw(st.booleans()):
                segs.append(f"ORC|RE|{text('OP')}|{text('OF')}")
            segs.append(f"OBR|{g + 1}|{text('P')}|{text('F')}|X|||{ts()}")
            for _ in range(draw(st.integers(1, 5))):
                code = draw(st.sampled_from(sorted(LAB)))
                marker += 1
                obx_number += 1
                sub_id = draw(st.sampled_from(["", "", "1", "2"]))
                segs.append(
                    f"OBX|{marker}|{draw(st.sampled_from(['NM', 'SN', 'ST']))}|"
                    f"{code}^{text('Name')}^LN|{sub_id}|{text('1.5')}|{text('mg/dL')}|"
                    f"{text('2.5-4.5')}|{text('L')}|||{text('F')}|||{ts()}"
                )
                if LAB[code]:
                    out.catalogued[str(marker)] = f"OBX[{obx_number}]"
    elif kind == "RDE^O11":
        rxe_number = 0
        for g in range(draw(st.integers(1, 4))):
            if g > 0 or draw(st.integers(0, 4)):  # now and then an RXE before any ORC
                segs.append(f"ORC|{text('NW')}|{text('P')}|{text('F')}||SC||||{ts()}")
            for _ in range(1 if draw(st.integers(0, 4)) else 2):  # rarely two RXE in a group
                drug = draw(st.sampled_from(sorted(DRUGS)))
                marker += 1
                rxe_number += 1
                segs.append(f"RXE|{text()}|{drug}{text()}|{marker}||{text('mg')}")
                if draw(st.booleans()):
                    segs.append(f"TQ1|1||||||{ts()}|{ts()}")
                if draw(st.booleans()):
                    segs.append(f"RXR|{text('IV')}")
                if DRUGS[drug]:
                    out.catalogued[str(marker)] = f"RXE[{rxe_number}]"
    else:
        rxa_number = 0
        for g in range(draw(st.integers(1, 3))):
            if g > 0 or draw(st.booleans()):
                segs.append(f"ORC|RE|{text('P')}|{text('F')}")
            for _ in range(draw(st.integers(1, 3))):
                drug = draw(st.sampled_from(sorted(DRUGS)))
                marker += 1
                rxa_number += 1
                status = draw(st.sampled_from(["", "CP", "RE", "NA"]))
                segs.append(
                    f"RXA|0|1|{ts()}|{ts()}|{drug}{text()}|{marker}|{text('mg')}"
                    + "|" * 13
                    + text(status)
                )
                if draw(st.booleans()):
                    segs.append(f"RXR|{text('IV')}")
                if DRUGS[drug]:
                    out.catalogued[str(marker)] = f"RXA[{rxa_number}]"
    out.raw = _encode("\r".join(segs) + "\r")
    return out


def _assert_conserved(gen: Generated, parsed: object) -> None:
    """Every catalogued item exactly once: as an output (by marker) or as a Rejected."""
    if not gen.catalogued:
        assert isinstance(parsed, Ignored)
        return
    assert isinstance(parsed, LabReport | PharmacyOrder)
    if isinstance(parsed, LabReport):
        outputs = [(r.set_id, r.position) for r in parsed.results]
    else:
        # RXE-3 / RXA-6 is the marker; the position is known from the generator
        outputs = [(o.give_amount, gen.catalogued.get(o.give_amount, "?")) for o in parsed.orders]
    seen = sorted([*outputs, *((_marker(gen, r.segment), r.segment) for r in parsed.rejected)])
    assert seen == sorted(gen.catalogued.items())


def _marker(gen: Generated, position: str) -> str:
    return next((m for m, p in gen.catalogued.items() if p == position), "?")


@SETTINGS
@given(messages())
@example(  # an uncatalogued ORDER group first must not hide the iron after it
    Generated(
        b"MSH|^~\\&|RX|H|||20240301||RDE^O11|R1|P|2.5.1\rPID|1||M1^^^H^MR\r"
        b"ORC|NW|P1\rRXE||2193^Ceftriaxone|1\rORC|NW|P2\rRXE||1435169^FCM|2\r",
        "RDE^O11",
        {"2": "RXE[2]"},
    )
)
def test_every_catalogued_item_is_read_or_rejected_exactly_once(gen: Generated) -> None:
    try:
        parsed = parse_message(gen.raw, CONFIG)
    except ParseError as err:
        # only a message-level problem: an RDE whose catalogued RXE has no ORC anywhere
        assert (err.segment, err.field) == ("ORC", "ORC-1")
        assert b"\rORC|" not in gen.raw
        return
    _assert_conserved(gen, parsed)


@pytest.mark.slow
@SETTINGS
@given(messages(dirty=True))
@example(  # NUL in the control id, invalid UTF-8 in a unit, an escaped LF in the value
    Generated(
        b"MSH|^~\\&|LIS|H|||20240310||ORU^R01|A\x00B|P|2.5.1\rPID|1||M1^^^H^MR\r"
        b"OBR|1\rOBX|1|ST|2777-1||1\\X0A\\2|mg\xff\x85dL|||||F\r",
        "ORU^R01",
        {"1": "OBX[1]"},
    )
)
def test_no_forbidden_character_leaves_the_parsers(gen: Generated) -> None:
    try:
        parsed = parse_message(gen.raw, CONFIG)
    except ParseError as err:
        assert not any(_forbidden(c) for c in str(err))
        return
    for s in _strings(parsed):
        assert not any(_forbidden(c) for c in s), ascii(s)
    # the dirt never loses an item either (codes and markers are kept clean)
    if isinstance(parsed, LabReport | PharmacyOrder) or gen.catalogued:
        _assert_conserved(gen, parsed)


def test_strings_walks_nested_events() -> None:
    # the hygiene check would be vacuous if it did not see nested strings
    when = datetime(2024, 1, 1)
    assert _strings((("a", 1, when), ["b", ("c",)])) == ["a", "b", "c"]
