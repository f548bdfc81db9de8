"""Realistic corpus files: each message parses, and equals hl7apy field by field."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers import Ignored, LabReport, PharmacyOrder, parse_message, split_messages
from parsers.framing import decode_message
from tests.parsers.common import CONFIG
from tests.parsers.compare import assert_matches_oracle

CORPUS = Path(__file__).parent / "corpus"

# file -> the kinds of event its messages produce, in order
EXPECTED = {
    "oru_v23.hl7": [LabReport],  # v2.3 ORU, times from OBR-7
    "oru_v251_sn.hl7": [LabReport],  # v2.5.1 ORU, SN values, two OBR groups, alternate code
    "rde_v251_tq1.hl7": [PharmacyOrder],  # v2.5.1 RDE^O11 timed by TQ1 after RXE
    "rde_v23_rxe1.hl7": [PharmacyOrder],  # v2.3 RDE^O01 timed by RXE-1 (TQ)
    "mllp_framed.hl7": [LabReport, Ignored, PharmacyOrder],  # MLLP framed file with an ADT
    "lf_only.hl7": [LabReport, PharmacyOrder, Ignored],  # LF endings, one message without blank
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(name: str) -> None:
    messages = split_messages((CORPUS / name).read_bytes())
    parsed = [parse_message(raw, CONFIG) for raw in messages]
    assert [type(p) for p in parsed] == EXPECTED[name]
    for raw, event in zip(messages, parsed, strict=True):
        assert_matches_oracle(decode_message(raw), event, CONFIG)


def test_corpus_key_values() -> None:
    # spot checks a human can read: SN "<0.5", the alternate LOINC, the SN range, RXE-1 timing
    (report,) = [
        parse_message(m, CONFIG) for m in split_messages((CORPUS / "oru_v251_sn.hl7").read_bytes())
    ]
    assert isinstance(report, LabReport)
    summary = [(r.analyte, r.value, r.comparator, r.code, r.status) for r in report.results]
    assert summary == [
        ("phosphate", 0.5, "<", "2777-1", "F"),
        ("calcium", 7.2, "", "17861-6", "F"),
        ("ionized_calcium", 0.92, "", "1994-3", "C"),
        ("albumin", None, "", "1751-7", "P"),
    ]
    assert report.patient.id == "00099123" and report.patient.service == "CAR"
    order = parse_message((CORPUS / "rde_v23_rxe1.hl7").read_bytes(), CONFIG)
    assert isinstance(order, PharmacyOrder)
    (given,) = order.orders
    assert (given.drug, given.route, given.dose_at.hour) == ("denosumab", "SC", 11)
