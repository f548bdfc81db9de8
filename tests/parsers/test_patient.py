"""PID-3 identifier choice and PV1 location."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parsers import LabReport, ParseError, ParserConfig, parse_message
from tests.parsers.common import CONFIG, MSH_ORU, OBR, OBX_PHOS, msg


def _patient(pid: str, pv1: str | None = None, config: ParserConfig = CONFIG) -> tuple[str, ...]:
    segs = [MSH_ORU, pid] + ([pv1] if pv1 else []) + [OBR, OBX_PHOS]
    out = parse_message(msg(*segs), config)
    assert isinstance(out, LabReport)
    p = out.patient
    return (p.id, p.authority, p.id_type, p.location, p.facility, p.service)


@pytest.mark.parametrize(
    ("pid3", "types", "authorities", "expected"),
    [
        # first repetition of an accepted type (MR) wins over an earlier PI
        ("E1^^^EPI^PI~M1^^^HOSP^MR", ("MR",), (), ("M1", "HOSP", "MR")),
        # preferred authority chosen even when another MR comes first
        ("M0^^^HOSP2^MR~M1^^^HOSP^MR", ("MR",), ("HOSP", "HOSP2"), ("M1", "HOSP", "MR")),
        # authorities are tried in the order listed, not in repetition order
        ("M0^^^B^MR~M1^^^A^MR", ("MR",), ("A", "B"), ("M1", "A", "MR")),
        # among repetitions of one authority, the first
        ("M0^^^A^MR~M1^^^A^MR", ("MR",), ("A",), ("M0", "A", "MR")),
        # an MR repetition with an empty id is skipped
        ("^^^HOSP^MR~M2^^^HOSP^MR", ("MR",), (), ("M2", "HOSP", "MR")),
        # an empty type list accepts any type
        ("E1^^^EPI^PI~M1^^^HOSP^MR", (), (), ("E1", "EPI", "PI")),
        # several accepted types: the first repetition of any of them
        ("S1^^^SSA^SS~E1^^^EPI^PI", ("PI", "SS"), (), ("S1", "SSA", "SS")),
        # authority is CX-4.1 (namespace id), not the universal id after it
        ("M1^^^HOSP&1.2.3&ISO^MR", ("MR",), ("HOSP",), ("M1", "HOSP", "MR")),
        # escaped delimiters inside an identifier are decoded
        ("M\\S\\1^^^HOSP^MR", ("MR",), (), ("M^1", "HOSP", "MR")),
        # type and authority compare case-insensitively
        ("M1^^^hosp^mr", ("MR",), ("HOSP",), ("M1", "hosp", "mr")),
    ],
)
def test_identifier_choice(
    pid3: str, types: tuple[str, ...], authorities: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    config = replace(CONFIG, identifier_types=types, identifier_authorities=authorities)
    assert _patient(f"PID|1||{pid3}||NAME^GIVEN||19500101|F", config=config)[:3] == expected


@pytest.mark.parametrize(
    ("pid3", "types", "authorities"),
    [
        # no repetition of an accepted type: no fallback to the first id
        ("E1^^^EPI^PI~E2^^^EPI^PI", ("MR",), ()),
        # MR present but from an authority not configured: another hospital's number
        ("M0^^^X^MR~M1^^^Y^MR", ("MR",), ("HOSP",)),
        # the configured authority only on a repetition of another type
        ("P1^^^HOSP^PI~M1^^^OTHER^MR", ("MR",), ("HOSP",)),
        # the accepted repetition has no id
        ("^^^HOSP^MR~E2^^^EPI^PI", ("MR",), ()),
        # any type accepted, but no repetition has an id
        ("^^^HOSP^MR", (), ()),
        # no PID-3 at all
        ("", ("MR",), ()),
    ],
)
def test_no_accepted_identifier_is_a_parse_error(
    pid3: str, types: tuple[str, ...], authorities: tuple[str, ...]
) -> None:
    config = replace(CONFIG, identifier_types=types, identifier_authorities=authorities)
    with pytest.raises(ParseError) as err:
        _patient(f"PID|1||{pid3}||NAME", config=config)
    assert (err.value.reason, err.value.segment, err.value.field) == (
        "no accepted patient identifier",
        "PID",
        "PID-3",
    )


@pytest.mark.parametrize(
    ("pv1", "expected"),
    [
        # poc/room/bed, facility from PL.4.1, service from PV1-10
        ("PV1|1|I|ICU^07^2^GEN&1.2&ISO|||||||CAR", ("ICU/07/2", "GEN", "CAR")),
        # empty parts skipped in the rendering
        ("PV1|1|O|CLINIC^^B", ("CLINIC/B", "", "")),
        # no PV1-3 at all
        ("PV1|1|O", ("", "", "")),
        # no PV1 segment
        (None, ("", "", "")),
    ],
)
def test_location(pv1: str | None, expected: tuple[str, str, str]) -> None:
    assert _patient("PID|1||M1^^^H^MR", pv1)[3:] == expected
