"""ORU^R01 parsing: pre-filter, values, fallbacks, order ids, versions and delimiters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from parsers import Ignored, LabReport, LabResult, ParseError, Rejected, parse_message
from tests.parsers.common import CONFIG, MSH_ORU, OBR, OBX_PHOS, PID, TZ, msg


def _results(*segments: str, msh: str = MSH_ORU) -> tuple[LabResult, ...]:
    out = parse_message(msg(msh, PID, *segments), CONFIG)
    assert isinstance(out, LabReport), out
    return out.results


def _one(obx: str) -> LabResult:
    (result,) = _results(OBR, obx)
    return result


@pytest.mark.parametrize(
    ("obx5", "value_type", "value", "comparator", "text"),
    [
        ("1.8", "NM", 1.8, "", "1.8"),  # plain NM
        ("-0.5", "NM", -0.5, "", "-0.5"),  # signed NM
        (".5", "NM", 0.5, "", ".5"),  # leading decimal point
        ("<0.5", "NM", 0.5, "<", "<0.5"),  # NM mislabelled with a comparator
        ("pending", "NM", None, "", "pending"),  # non-numeric NM: no value, no error
        ("1e3", "NM", None, "", "1e3"),  # exponents are not HL7 numbers
        ("nan", "NM", None, "", "nan"),  # neither is NaN
        ("<^0.5", "SN", 0.5, "<", "<0.5"),  # SN below detection limit
        ("^1.2", "SN", 1.2, "", "1.2"),  # SN with no comparator
        (">=^3", "SN", 3.0, ">=", ">=3"),  # SN with a two-char comparator
        ("=^2", "SN", 2.0, "=", "=2"),  # SN with "="
        ("^1^-^3", "SN", None, "", "1-3"),  # SN range: no single value
        ("^1^:^128", "SN", None, "", "1:128"),  # SN ratio: no single value
        ("<>^3", "SN", None, "", "<>3"),  # "not equal" cannot be a value
        ("^abc", "SN", None, "", "abc"),  # SN with text num1
        ("", "SN", None, "", ""),  # empty SN
        ("< 0.5", "ST", 0.5, "<", "< 0.5"),  # ST that is a number with comparator
        ("1.2", "ST", 1.2, "", "1.2"),  # ST that is a number
        ("see note", "ST", None, "", "see note"),  # ST that is text
        ("1.2~1.3", "ST", 1.2, "", "1.2; 1.3"),  # repetitions: first gives the value, no LF
        ("2.1", "TX", 2.1, "", "2.1"),  # TX is read like ST
        ("POS^Positive^L", "CE", None, "", "POS Positive L"),  # coded value: no number
        ("", "NM", None, "", ""),  # empty value
        ("9" * 400, "NM", None, "", "9" * 400),  # overflow to infinity is not a value
    ],
)
def test_values(
    obx5: str, value_type: str, value: float | None, comparator: str, text: str
) -> None:
    r = _one(f"OBX|1|{value_type}|2777-1^Phosphate^LN||{obx5}|mg/dL|||||F|||20240310064500")
    assert (r.value_type, r.value, r.comparator, r.value_text) == (
        value_type,
        value,
        comparator,
        text,
    )


def test_all_fields_of_a_result() -> None:
    # every LabResult field comes from the documented place
    r = _one(
        "OBX|3|SN|2777-1^Phos\\T\\phate^LN||<^0.5|mg/dL^^UCUM|2.5-4.5|LL~A|||c|||20240310064500"
    )
    assert r == LabResult(
        analyte="phosphate",
        code="2777-1",
        code_system="LN",
        code_text="Phos&phate",
        value_type="SN",
        value=0.5,
        comparator="<",
        value_text="<0.5",
        unit="mg/dL",
        reference_range="2.5-4.5",
        abnormal_flags="LL~A",
        status="C",
        observed_at=datetime(2024, 3, 10, 6, 45, tzinfo=TZ),
        placer_order_id="PL1",
        filler_order_id="FL1",
        set_id="3",
        sub_id="",
        occurrence=1,
        position="OBX[1]",
    )


@pytest.mark.parametrize(
    ("obx3", "code", "system"),
    [
        ("2777-1^Phosphate^LN", "2777-1", "LN"),  # primary identifier
        ("LOC9^Phos^99LAB^2777-1^Phosphate^LN", "2777-1", "LN"),  # alternate identifier OBX-3.4
        ("locphos^Phos^99LAB", "locphos", "99LAB"),  # lookup is case-insensitive, code as sent
        (" 2777-1 ^Phosphate^LN", "2777-1", "LN"),  # stray blanks around a code
    ],
)
def test_code_matching(obx3: str, code: str, system: str) -> None:
    r = _one(f"OBX|1|NM|{obx3}||1.0|mg/dL|||||F")
    assert (r.analyte, r.code, r.code_system) == ("phosphate", code, system)


def test_prefilter_ignores_without_reading_pid() -> None:
    # no catalogued OBX: Ignored even though PID is missing, so PID is never looked at
    out = parse_message(msg(MSH_ORU, OBR, "OBX|1|NM|718-7^Hgb^LN||11|g/dL|||||F"), CONFIG)
    assert isinstance(out, Ignored) and out.reason == "no catalogued analyte"
    assert out.header.control_id == "C1"


def test_uncatalogued_results_are_skipped() -> None:
    # only catalogued OBX become results; set ids show which
    results = _results(
        OBR,
        "OBX|1|NM|718-7^Hgb^LN||11|g/dL|||||F",
        "OBX|2|NM|17861-6^Ca^LN||7.9|mg/dL|||||F",
        "OBX|3|NM|2951-2^Na^LN||139|mmol/L|||||F",
    )
    assert [(r.set_id, r.analyte) for r in results] == [("2", "calcium")]


NY = TZ


@pytest.mark.parametrize(
    ("obr7", "obx14", "msh7", "expected"),
    [
        # OBX-14 first
        ("20240101", "20240102", "20240103", datetime(2024, 1, 2, tzinfo=NY)),
        # else OBR-7 of the enclosing OBR
        ("20240101", "", "20240103", datetime(2024, 1, 1, tzinfo=NY)),
        # else MSH-7
        ("", "", "20240103", datetime(2024, 1, 3, tzinfo=NY)),
        # a TS precision component is ignored
        ("", "20240102^D", "20240103", datetime(2024, 1, 2, tzinfo=NY)),
        # an explicit offset wins over the hospital zone
        ("", "202401021200+0100", "", datetime(2024, 1, 2, 11, tzinfo=UTC)),
    ],
)
def test_observed_at_fallback(obr7: str, obx14: str, msh7: str, expected: datetime) -> None:
    msh = f"MSH|^~\\&|LIS|HOSP|||{msh7}||ORU^R01|C1|P|2.5.1"
    (r,) = _results(f"OBR|1|||X|||{obr7}", f"OBX|1|NM|2777-1||1|mg/dL|||||F|||{obx14}", msh=msh)
    assert r.observed_at == expected


def test_multiple_order_groups_and_order_id_fallback() -> None:
    # each OBX takes times and ids from its own OBR; missing OBR ids fall back to the ORC
    # right before that OBR, and an ORC does not leak into a later OBR group
    results = _results(
        "ORC|RE|ORCP1|ORCF1",
        "OBR|1|||X|||20240101",
        "OBX|1|NM|2777-1||1|mg/dL|||||F",
        "OBR|2|OBRP2|OBRF2|X|||20240202",
        "OBX|1|NM|17861-6||8|mg/dL|||||F",
        "ORC|RE|ORCP3|ORCF3",
        "OBR|3|OBRP3||X|||20240303",
        "OBX|1|NM|1751-7||3|g/dL|||||F",
    )
    assert [(r.placer_order_id, r.filler_order_id, r.observed_at.day) for r in results] == [
        ("ORCP1", "ORCF1", 1),
        ("OBRP2", "OBRF2", 2),
        ("OBRP3", "ORCF3", 3),
    ]


@pytest.mark.parametrize(
    "sep",
    [
        "\r",  # standard CR
        "\n",  # LF-only
        "\r\n",  # CRLF
    ],
)
def test_line_endings(sep: str) -> None:
    out = parse_message(msg(MSH_ORU, PID, OBR, "OBX|1|NM|2777-1||1.5|mg/dL|||||F", sep=sep), CONFIG)
    assert isinstance(out, LabReport) and out.results[0].value == 1.5


def test_mllp_framed_and_str_input() -> None:
    # MLLP framing bytes are stripped; a str is accepted as well as bytes
    raw = msg(MSH_ORU, PID, OBR, "OBX|1|NM|2777-1||1.5|mg/dL|||||F")
    framed = b"\x0b" + raw + b"\x1c\r"
    assert parse_message(framed, CONFIG) == parse_message(raw.decode(), CONFIG)


def test_non_standard_delimiters() -> None:
    # every delimiter different from |^~\& and escapes written with the message's own char
    out = parse_message(
        msg(
            "MSH#!*/%#LIS#HOSP###20240310##ORU!R01#C/S/1#P#2.5.1",
            "PID#1##X1!!!EPI!PI*M/F/1!!!HO%1.2!MR",
            "OBR#1#P1%x#F1#X###20240101",
            "OBX#1#SN#2777/T/1!Phos!LN##<!0.5#mg/dL#2.5/R/4.5#######20240102",
        ),
        CONFIG.__class__(
            lab_codes={"2777%1": "phosphate"}, classify_drug=CONFIG.classify_drug, timezone=TZ
        ),
    )
    assert isinstance(out, LabReport)
    assert out.header.control_id == "C!1"
    assert (out.patient.id, out.patient.authority) == ("M#1", "HO")
    (r,) = out.results
    assert (r.code, r.value, r.comparator, r.reference_range) == ("2777%1", 0.5, "<", "2.5*4.5")
    assert r.placer_order_id == "P1"
    assert r.observed_at == datetime(2024, 1, 2, tzinfo=TZ)


@pytest.mark.parametrize(
    "version",
    ["2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.8"],  # versions seen in the field
)
def test_versions(version: str) -> None:
    msh = f"MSH|^~\\&|LIS|HOSP|||20240310||ORU^R01|C1|P|{version}"
    (r,) = _results(OBR, "OBX|1|NM|2777-1||1.5|mg/dL|||||F", msh=msh)
    assert r.value == 1.5


def test_v27_truncation_character() -> None:
    # a fifth encoding character (v2.7 truncation) is tolerated
    msh = "MSH|^~\\&#|LIS|HOSP|||20240310||ORU^R01|C1|P|2.7"
    (r,) = _results(OBR, "OBX|1|NM|2777-1||1.5|mg/dL|||||F", msh=msh)
    assert r.value == 1.5


def test_message_header() -> None:
    # MSH fields read by position; MSH-9.3 and MSH-12 components beyond the first ignored
    out = parse_message(
        msg(
            "MSH|^~\\&|LIS^1.2^ISO|HOSP^3.4^ISO|||20240310081522-0500||oru^r01^ORU_R01|C1|P|2.5.1^US",
            PID,
            OBR,
            "OBX|1|NM|718-7||1|g/dL",
        ),
        CONFIG,
    )
    assert isinstance(out, Ignored)
    h = out.header
    assert (h.message_type, h.control_id, h.sending_application, h.sending_facility) == (
        "ORU^R01",
        "C1",
        "LIS",
        "HOSP",
    )
    assert h.version == "2.5.1"
    assert h.message_time == datetime(2024, 3, 10, 8, 15, 22, tzinfo=timezone(timedelta(hours=-5)))


@pytest.mark.parametrize(
    ("msh9", "reason"),
    [
        ("ADT^A01", "message type ADT^A01"),  # other message types
        ("ORU^R30", "message type ORU^R30"),  # other ORU triggers
        ("ACK", "message type ACK"),  # no trigger event
    ],
)
def test_other_message_types_ignored(msh9: str, reason: str) -> None:
    out = parse_message(msg(f"MSH|^~\\&|A|B|||20240101||{msh9}|C1|P|2.5"), CONFIG)
    assert out == Ignored(out.header, reason)  # type: ignore[union-attr]


def test_two_obx_same_code_one_obr_are_two_results() -> None:
    # neither overwrites the other: occurrence tells them apart, position says where
    results = _results(
        OBR,
        "OBX|1|NM|2777-1^Phosphate^LN||1.8|mg/dL|||||F",
        "OBX|2|NM|718-7^Hgb^LN||11|g/dL|||||F",
        "OBX|3|NM|2777-1^Phosphate^LN||0.9|mg/dL|||||F",
    )
    assert [(r.value, r.sub_id, r.occurrence, r.position) for r in results] == [
        (1.8, "", 1, "OBX[1]"),
        (0.9, "", 2, "OBX[3]"),
    ]


def test_obx4_sub_id_is_read_and_counts_apart() -> None:
    # OBX-4 (component 1, stripped) is the sub-id; occurrence counts per (code, sub-id)
    results = _results(
        OBR,
        "OBX|1|NM|2777-1||1.1|mg/dL||||| F",
        "OBX|2|NM|2777-1| 2 ^x|1.2|mg/dL|||||F",
        "OBX|3|NM|2777-1|2|1.3|mg/dL|||||F",
        "OBX|4|NM|2777-1||1.4|mg/dL|||||F",
    )
    assert [(r.sub_id, r.occurrence) for r in results] == [("", 1), ("2", 1), ("2", 2), ("", 2)]


def test_occurrence_restarts_in_each_obr_and_ignores_code_case() -> None:
    # counted within one OBR; codes compare case-insensitively (the code map does too)
    results = _results(
        "OBR|1|P1",
        "OBX|1|NM|locphos||1|mg/dL|||||F",
        "OBX|2|NM|LOCPHOS||2|mg/dL|||||F",
        "OBR|2|P2",
        "OBX|3|NM|LOCPHOS||3|mg/dL|||||F",
    )
    assert [(r.placer_order_id, r.occurrence, r.position) for r in results] == [
        ("P1", 1, "OBX[1]"),
        ("P1", 2, "OBX[2]"),
        ("P2", 1, "OBX[3]"),
    ]


def test_bad_obx14_rejects_only_that_result() -> None:
    # an unusable time rejects its own OBX; the others of the message are still results,
    # and the rejected one still counts for the occurrence of the next
    out = parse_message(
        msg(
            MSH_ORU,
            PID,
            OBR,
            "OBX|1|NM|17861-6||6.5|mg/dL|||||F|||NOTATIME",
            "OBX|2|NM|17861-6||6.6|mg/dL|||||F|||20240310064500",
            "OBX|3|NM|2777-1||0.9|mg/dL|||||F|||NOTATIME",
        ),
        CONFIG,
    )
    assert isinstance(out, LabReport)
    assert [(r.analyte, r.value, r.occurrence, r.position) for r in out.results] == [
        ("calcium", 6.6, 2, "OBX[2]")
    ]
    assert out.rejected == (
        Rejected("OBX[1]", "OBX-14", "unparseable timestamp", "calcium"),
        Rejected("OBX[3]", "OBX-14", "unparseable timestamp", "phosphate"),
    )


def test_every_catalogued_obx_rejected_is_still_a_report() -> None:
    # the service dead-letters each rejected result, so the report is not Ignored
    out = parse_message(msg(MSH_ORU, PID, OBR, "OBX|1|NM|2777-1||1|mg/dL|||||F|||BAD"), CONFIG)
    assert isinstance(out, LabReport)
    assert (out.results, [r.segment for r in out.rejected]) == ((), ["OBX[1]"])


def test_message_level_problem_still_raises_with_rejected_items() -> None:
    # a rejected OBX does not hide a missing PID: the whole message is unusable
    with pytest.raises(ParseError) as err:
        parse_message(msg(MSH_ORU, OBR, "OBX|1|NM|2777-1||1|mg/dL|||||F|||BAD"), CONFIG)
    assert (err.value.segment, err.value.field) == ("PID", "PID-3")


def test_nul_in_control_id_is_replaced_not_dropped() -> None:
    # "AB\x00C" and "ABC" must stay two different control ids, and neither holds a NUL
    def control_id(msh10: bytes) -> str:
        raw = b"MSH|^~\\&|LIS|HOSP|LS|HOSP|20240310||ORU^R01|" + msh10 + b"|P|2.5.1\r"
        out = parse_message(raw + msg(PID, OBR, OBX_PHOS), CONFIG)
        return out.header.control_id

    assert control_id(b"AB\x00C") == "AB\ufffdC"
    assert control_id(b"ABC") == "ABC"


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("mg\\X00\\dL", "mg\ufffddL"),  # an escaped NUL
        ("mg\\X0A\\dL", "mg\ufffddL"),  # an escaped line feed
        ("mg\x85dL", "mg\ufffddL"),  # a C1 control written as UTF-8
        ("mg\x01dL", "mg\ufffddL"),  # a raw C0 control
    ],
)
def test_control_characters_in_result_fields_are_replaced(unit: str, expected: str) -> None:
    (r,) = _results(OBR, f"OBX|1|NM|2777-1||1|{unit}|||||F")
    assert r.unit == expected
