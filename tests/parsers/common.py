"""Shared fixtures for parser tests: a small lab/drug catalog and message builders."""

from __future__ import annotations

from collections.abc import Sequence
from zoneinfo import ZoneInfo

from parsers import ParserConfig

LAB_CODES = {
    "2777-1": "phosphate",
    "14879-1": "phosphate",
    "17861-6": "calcium",
    "2000-8": "calcium",
    "1994-3": "ionized_calcium",
    "1995-0": "ionized_calcium",
    "17864-0": "ionized_calcium",
    "29265-6": "corrected_calcium",
    "1751-7": "albumin",
    "LOCPHOS": "phosphate",  # a local code, to exercise the alternate identifier OBX-3.4
}

DRUGS = {
    "ferric carboxymaltose": "ferric_carboxymaltose",
    "injectafer": "ferric_carboxymaltose",
    "1435169": "ferric_carboxymaltose",
    "denosumab": "denosumab",
    "prolia": "denosumab",
    "993452": "denosumab",
}


def classify_drug(codes: Sequence[str], names: Sequence[str]) -> str | None:
    """Tiny stand-in for alerts/catalog.py: exact code, or a known name inside the text."""
    for code in codes:
        if code in DRUGS:
            return DRUGS[code]
    for name in names:
        low = name.lower()
        for key, drug in DRUGS.items():
            if not key.isdigit() and key in low:
                return drug
    return None


TZ = ZoneInfo("America/New_York")
CONFIG = ParserConfig(lab_codes=LAB_CODES, classify_drug=classify_drug, timezone=TZ)


def msg(*segments: str, sep: str = "\r") -> bytes:
    """Join segments with ``sep`` into message bytes."""
    return (sep.join(segments) + sep).encode("utf-8")


MSH_ORU = "MSH|^~\\&|LIS|HOSP|LS|HOSP|20240310081522||ORU^R01|C1|P|2.5.1"
MSH_RDE = "MSH|^~\\&|RX|HOSP|LS|HOSP|20240301093000||RDE^O11^RDE_O11|R1|P|2.5.1"
PID = "PID|1||123^^^HOSP^MR"
OBR = "OBR|1|PL1|FL1|BMP^Panel^L|||20240310070000"
OBX_PHOS = "OBX|1|NM|2777-1^Phosphate^LN||1.8|mg/dL|2.5-4.5|L|||F|||20240310064500"
ORC_NW = "ORC|NW|PLRX|FLRX||SC||||20240301092500|||9876^DOC"
RXE_FCM = "RXE||1435169^Ferric carboxymaltose^RXNORM|750||mg"
