"""PID-3 identifier choice and PV1 location."""

from __future__ import annotations

from dataclasses import replace

import pytest

from parsers import LabReport, ParserConfig, parse_message
from tests.parsers.common import CONFIG, MSH_ORU, OBR, OBX_PHOS, msg


def _patient(pid: str, pv1: str | None = None, config: ParserConfig = CONFIG) -> tuple[str, ...]:
    segs = [MSH_ORU, pid] + ([pv1] if pv1 else []) + [OBR, OBX_PHOS]
    out = parse_message(msg(*segs), config)
    assert isinstance(out, LabReport)
    p = out.patient
    return (p.id, p.authority, p.id_type, p.location, p.facility, p.service)


@pytest.mark.parametrize(
    ("pid3", "authorities", "expected"),
    [
        # first repetition of type MR wins over an earlier PI
        ("E1^^^EPI^PI~M1^^^HOSP^MR", (), ("M1", "HOSP", "MR")),
        # preferred authority chosen even when another MR comes first
        ("M0^^^OTHER^MR~M1^^^HOSP^MR", ("HOSP",), ("M1", "HOSP", "MR")),
        # authorities are tried in the order listed
        ("M0^^^B^MR~M1^^^A^MR", ("A", "B"), ("M1", "A", "MR")),
        # no listed authority present: first MR anyway
        ("M0^^^X^MR~M1^^^Y^MR", ("HOSP",), ("M0", "X", "MR")),
        # no MR at all: first repetition with a non-empty id
        ("^^^EPI^PI~E2^^^EPI^PI", (), ("E2", "EPI", "PI")),
        # an MR repetition with an empty id is skipped
        ("^^^HOSP^MR~E2^^^EPI^PI", (), ("E2", "EPI", "PI")),
        # authority is CX-4.1 (namespace id), not the universal id after it
        ("M1^^^HOSP&1.2.3&ISO^MR", (), ("M1", "HOSP", "MR")),
        # escaped delimiters inside an identifier are decoded
        ("M\\S\\1^^^HOSP^MR", (), ("M^1", "HOSP", "MR")),
        # type and authority compare case-insensitively
        ("M1^^^hosp^mr", ("HOSP",), ("M1", "hosp", "mr")),
    ],
)
def test_identifier_choice(
    pid3: str, authorities: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    config = replace(CONFIG, identifier_authorities=authorities)
    assert _patient(f"PID|1||{pid3}||NAME^GIVEN||19500101|F", config=config)[:3] == expected


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
