"""Throughput of parse_message on one core: ``python -m service.tools.parser_bench``.

Prints messages per second and microseconds per message for a relevant 13-segment ORU, an
irrelevant ORU (no catalogued analyte, so the pre-filter answers), a relevant RDE^O11, an
RDE^O11 with two ORDER groups (an antibiotic, then the iron) and an RAS^O17 with two RXA.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from parsers.config import ParserConfig
from parsers.dispatch import parse_message

RELEVANT_ORU = "\r".join(
    [
        "MSH|^~\\&|LIS|GENHOSP|LABSENTINEL|GENHOSP|20240310081522-0500||ORU^R01^ORU_R01|M1|P|2.5.1",
        "PID|1||E12345^^^EPI^PI~00099123^^^GENHOSP^MR||DOE^JANE||19580214|F",
        "PV1|1|I|ICU^07^2^GENHOSP||||||CAR",
        "ORC|RE|ORD777^EPIC|LAB888^LIS",
        "OBR|1|ORD777^EPIC|LAB888^LIS|BMP^Basic metabolic panel^L|||20240310070000-0500",
        "OBX|1|SN|2777-1^Phosphate^LN||<^0.5|mg/dL|2.5-4.5|LL|||F|||20240310064500-0500",
        "OBX|2|NM|17861-6^Calcium^LN||7.2|mg/dL|8.5-10.5|L|||F|||20240310064500-0500",
        "OBX|3|NM|1751-7^Albumin^LN||3.1|g/dL|3.5-5.0|L|||F|||20240310064500-0500",
        "OBX|4|NM|2951-2^Sodium^LN||139|mmol/L|135-145|N|||F|||20240310064500-0500",
        "OBX|5|NM|2823-3^Potassium^LN||4.1|mmol/L|3.5-5.1|N|||F|||20240310064500-0500",
        "OBX|6|NM|2160-0^Creatinine^LN||1.1|mg/dL|0.6-1.2|N|||F|||20240310064500-0500",
        "OBX|7|NM|19123-9^Magnesium^LN||1.6|mg/dL|1.7-2.2|L|||F|||20240310064500-0500",
        "NTE|1||Verified by repeat analysis",
    ]
).encode()

IRRELEVANT_ORU = "\r".join(
    [
        "MSH|^~\\&|LIS|GENHOSP|LABSENTINEL|GENHOSP|20240310081522-0500||ORU^R01^ORU_R01|M2|P|2.5.1",
        "PID|1||E12345^^^EPI^PI~00099123^^^GENHOSP^MR||DOE^JANE||19580214|F",
        "PV1|1|I|ICU^07^2^GENHOSP||||||CAR",
        "OBR|1|ORD1|LAB1|CBC^Blood count^L|||20240310070000-0500",
        "OBX|1|NM|718-7^Hemoglobin^LN||11.2|g/dL|12-16|L|||F|||20240310064500-0500",
        "OBX|2|NM|6690-2^WBC^LN||7.1|10*3/uL|4-11|N|||F|||20240310064500-0500",
        "OBX|3|NM|777-3^Platelets^LN||250|10*3/uL|150-400|N|||F|||20240310064500-0500",
    ]
).encode()

RDE = "\r".join(
    [
        "MSH|^~\\&|PHARM|GENHOSP|LABSENTINEL|GENHOSP|20240301093000||RDE^O11^RDE_O11|R1|P|2.5.1",
        "PID|1||00099123^^^GENHOSP^MR||DOE^JANE||19580214|F",
        "PV1|1|O|INFUSION^CH3^^GENHOSP",
        "ORC|NW|PLRX1|FLRX1||SC||||20240301092500|||9876^PRESCRIBER",
        "RXE||1435169^Ferric carboxymaltose 750 MG^RXNORM^^Injectafer|750||mg|INJ",
        "TQ1|1||||||202403011000|202403011030",
        "RXR|IV^Intravenous^HL70162",
    ]
).encode()


RDE_TWO_GROUPS = "\r".join(
    [
        "MSH|^~\\&|PHARM|GENHOSP|LABSENTINEL|GENHOSP|20240301093000||RDE^O11^RDE_O11|R2|P|2.5.1",
        "PID|1||00099123^^^GENHOSP^MR||DOE^JANE||19580214|F",
        "PV1|1|O|INFUSION^CH3^^GENHOSP",
        "ORC|NW|PLRX0|FLRX0||SC||||20240301092000|||9876^PRESCRIBER",
        "RXE||2193^Ceftriaxone 1 G^RXNORM|1||g|INJ",
        "TQ1|1||||||202403010930",
        "RXR|IV^Intravenous^HL70162",
        "ORC|NW|PLRX1|FLRX1||SC||||20240301092500|||9876^PRESCRIBER",
        "RXE||1435169^Ferric carboxymaltose 750 MG^RXNORM^^Injectafer|750||mg|INJ",
        "TQ1|1||||||202403011000|202403011030",
        "RXR|IV^Intravenous^HL70162",
    ]
).encode()

RAS_TWO_RXA = "\r".join(
    [
        "MSH|^~\\&|MAR|GENHOSP|LABSENTINEL|GENHOSP|20240301120000||RAS^O17^RAS_O17|A1|P|2.5.1",
        "PID|1||00099123^^^GENHOSP^MR||DOE^JANE||19580214|F",
        "ORC|RE|PLRX1|FLRX1|||||||||77^NURSE",
        "RXA|0|1|202403011005|202403011035|1435169^Injectafer^RXNORM|750|mg|||||||||||||CP",
        "RXR|IV",
        "ORC|RE|PLRX2|FLRX2|||||||||77^NURSE",
        "RXA|0|1|202403021005|202403021035|1435169^Injectafer^RXNORM|750|mg|||||||||||||CP",
        "RXR|IV",
    ]
).encode()


def _classify(codes: Sequence[str], names: Sequence[str]) -> str | None:
    return "ferric_carboxymaltose" if "1435169" in codes else None


CONFIG = ParserConfig(
    lab_codes={"2777-1": "phosphate", "17861-6": "calcium", "1751-7": "albumin"},
    classify_drug=_classify,
)


def rate(raw: bytes, seconds: float = 1.0) -> float:
    """Messages per second parsing ``raw`` repeatedly for about ``seconds``."""
    n = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(200):
            parse_message(raw, CONFIG)
        n += 200
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main() -> None:
    for name, raw in (
        ("relevant ORU (13 segments)", RELEVANT_ORU),
        ("irrelevant ORU", IRRELEVANT_ORU),
        ("relevant RDE^O11", RDE),
        ("RDE^O11, two ORDER groups", RDE_TWO_GROUPS),
        ("RAS^O17, two RXA", RAS_TWO_RXA),
    ):
        per_second = rate(raw)
        print(f"{name:28s} {per_second:10,.0f} msgs/s {1e6 / per_second:8.2f} µs/msg")


if __name__ == "__main__":
    main()
