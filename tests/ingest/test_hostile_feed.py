"""Message shapes real hospital feeds send, through the pipeline on both databases.

Each test is named after the behaviour it protects; the last one is a conservation property:
every relevant OBX of a generated multi-group report is either stored or dead-lettered with a
reason, counted from the generator, never assumed.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import Session, select

from alerts.identity import patient_key
from service.db.models import DeadLetter, LabResultRow, MedicationOrderRow, Patient
from service.ingest.pipeline import Outcome, Pipeline
from service.runtime.clock import FixedClock
from tests.ingest.conftest import T0
from tests.ingest.test_pipeline import MRN, feed
from tests.messages import DENOSUMAB, oru, rde, ts

ANTIBIOTIC = "CEF1^Cefazolin 1 g^LOCAL"
IRON = "1435169^Ferric carboxymaltose 750 mg/15 mL^RXNORM"


def _header(kind: str, at, control_id: str, mrn: str = MRN, authority: str = "GH") -> str:
    return (
        f"MSH|^~\\&|APP|GENERAL HOSPITAL|LABSENTINEL|GH|{ts(at)}||{kind}|{control_id}|P|2.5.1\r"
        f"PID|1||{mrn}^^^{authority}^MR||TESTPATIENT^ALPHA||19500101|F\r"
        "PV1|1|I|4W^412^B^GH||||||MED"
    )


def _denosumab_before_iron(pipeline: Pipeline, clock: FixedClock) -> None:
    before = T0 - timedelta(days=14)
    feed(pipeline, clock, (before, rde(MRN, before, drug=DENOSUMAB, route="SC")))


def _dead_letters(pipeline: Pipeline) -> list[DeadLetter]:
    with Session(pipeline.engine) as session:
        return list(session.exec(select(DeadLetter)).all())


def test_rde_with_antibiotic_then_iron_keeps_the_iron(pipeline, clock) -> None:
    _denosumab_before_iron(pipeline, clock)
    raw = "\r".join(
        (
            _header("RDE^O11^RDE_O11", T0, "RDE2GROUPS"),
            f"ORC|NW|ABX1|ABX1F||IP||||{ts(T0)}",
            f"RXE|^^^{ts(T0)}|{ANTIBIOTIC}|1||g",
            "RXR|IV",
            f"ORC|NW|FE1|FE1F||IP||||{ts(T0)}",
            f"RXE|^^^{ts(T0)}|{IRON}|750||mg",
            "RXR|IV",
            f"TQ1|1||||||{ts(T0)}",
        )
    ).encode()
    feed(pipeline, clock, (T0, raw))
    d14 = T0 + timedelta(days=14)
    (result,) = feed(pipeline, clock, (d14, oru(MRN, d14, value="1.4")))
    assert [n.severity for n in result.notifications] == ["high"]


def test_ras_with_two_rxa_stores_both_administrations(pipeline, clock) -> None:
    raw = "\r".join(
        (
            _header("RAS^O17^RAS_O17", T0, "RAS2RXA"),
            "ORC|RE|FE2|FE2F",
            f"RXA|0|1|{ts(T0)}|{ts(T0)}|{IRON}|500|mg||||||||||||CP",
            "RXR|IV",
            "ORC|RE|FE3|FE3F",
            f"RXA|0|2|{ts(T0 + timedelta(days=7))}||{IRON}|500|mg||||||||||||CP",
            "RXR|IV",
        )
    ).encode()
    (result,) = feed(pipeline, clock, (T0, raw))
    assert result.outcome is Outcome.STORED
    with Session(pipeline.engine) as session:
        rows = session.exec(select(MedicationOrderRow)).all()
    assert sorted(r.order_key for r in rows) == ["FE2", "FE3"]


def test_two_obx_of_one_code_in_one_obr_are_two_results(pipeline, clock) -> None:
    raw = "\r".join(
        (
            _header("ORU^R01^ORU_R01", T0, "ORU2OBX"),
            "OBR|1|ORD9|ORD9F|PHOS^Phosphate^L|||" + ts(T0),
            f"OBX|1|NM|2777-1^Phosphate^LN||3.1|mg/dL|2.5-4.5||||F|||{ts(T0)}",
            f"OBX|2|NM|2777-1^Phosphate^LN||2.9|mg/dL|2.5-4.5||||F|||{ts(T0)}",
        )
    ).encode()
    feed(pipeline, clock, (T0, raw))
    with Session(pipeline.engine) as session:
        values = sorted(r.value for r in session.exec(select(LabResultRow)).all())
    assert values == [2.9, 3.1]


def test_unknown_unit_dead_letters_only_that_result_and_the_critical_calcium_pages(
    pipeline, clock
) -> None:
    _denosumab_before_iron(pipeline, clock)
    feed(pipeline, clock, (T0, rde(MRN, T0)))
    d14 = T0 + timedelta(days=14)
    raw = "\r".join(
        (
            _header("ORU^R01^ORU_R01", d14, "ORUMIXED"),
            "OBR|1|ORD7|ORD7F|CHEM^Chemistry^L|||" + ts(d14),
            f"OBX|1|NM|2777-1^Phosphate^LN||1.2|furlongs|2.5-4.5||||F|||{ts(d14)}",
            f"OBX|2|NM|17861-6^Calcium^LN||6.5|mg/dL|8.5-10.5||||F|||{ts(d14)}",
        )
    ).encode()
    (result,) = feed(pipeline, clock, (d14, raw))
    assert result.outcome is Outcome.STORED and result.item_dead_letters == ("unit",)
    assert [(n.analyte, n.severity) for n in result.notifications] == [("calcium", "critical")]
    (letter,) = _dead_letters(pipeline)
    assert "OBX[1]" in letter.reason and "furlongs" not in letter.reason


def test_comma_decimal_is_dead_lettered_never_stored_empty(pipeline, clock) -> None:
    (result,) = feed(pipeline, clock, (T0, oru(MRN, T0, value="0,8")))
    assert result.outcome is Outcome.DEAD_LETTER and result.error_class == "value"
    with Session(pipeline.engine) as session:
        assert session.exec(select(LabResultRow)).all() == []
    (letter,) = _dead_letters(pipeline)
    assert "not a number" in letter.reason and "0,8" not in letter.reason


def test_status_u_with_empty_value_keeps_the_preliminary_value_and_pages(pipeline, clock) -> None:
    _denosumab_before_iron(pipeline, clock)
    feed(pipeline, clock, (T0, rde(MRN, T0)))
    d14 = T0 + timedelta(days=14)
    feed(pipeline, clock, (d14, oru(MRN, d14, value="1.4", status="P", order="ORDU")))
    (final,) = feed(
        pipeline,
        clock,
        (
            d14 + timedelta(hours=1),
            oru(MRN, d14, value="", status="U", order="ORDU", sent=d14 + timedelta(hours=1)),
        ),
    )
    with Session(pipeline.engine) as session:
        (row,) = session.exec(select(LabResultRow)).all()
    assert (row.value, row.status) == (1.4, "U")
    assert [n.severity for n in final.notifications] == ["high"]


def test_same_number_from_two_authorities_is_two_patients(pipeline, clock) -> None:
    # One person's iron and another's denosumab must never page together.
    denosumab = rde(MRN, T0 - timedelta(days=14), drug=DENOSUMAB, route="SC")
    other = denosumab.replace(f"{MRN}^^^GH^MR".encode(), f"{MRN}^^^CLINIC^MR".encode())
    feed(pipeline, clock, (T0 - timedelta(days=14), other))
    feed(pipeline, clock, (T0, rde(MRN, T0)))
    d14 = T0 + timedelta(days=14)
    (result,) = feed(pipeline, clock, (d14, oru(MRN, d14, value="0.8")))
    assert result.notifications == []
    with Session(pipeline.engine) as session:
        keys = sorted(p.patient_id for p in session.exec(select(Patient)).all())
    assert keys == [patient_key(MRN, "CLINIC"), patient_key(MRN, "GH")]


def test_message_without_accepted_identifier_is_dead_lettered(pipeline, clock) -> None:
    raw = oru(MRN, T0).replace(f"{MRN}^^^GH^MR~".encode(), b"")  # only the SSN is left
    (result,) = feed(pipeline, clock, (T0, raw))
    assert (result.outcome, result.error_class) == (Outcome.DEAD_LETTER, "parse")
    (letter,) = _dead_letters(pipeline)
    assert "PID-3" in letter.reason


def test_nul_in_control_id_does_not_stop_the_stream(pipeline, clock) -> None:
    hostile = oru(MRN, T0, control_id="AB\x00CD")
    first, second = feed(pipeline, clock, (T0, hostile), (T0, oru(MRN, T0, value="3.0")))
    assert first.outcome in (Outcome.STORED, Outcome.DEAD_LETTER)
    assert second.outcome is Outcome.STORED


def test_oversized_record_is_dead_lettered_before_decoding(pipeline, clock) -> None:
    pipeline.max_message_bytes = 2048
    raw = oru(MRN, T0) + b"\rNTE|1||" + b"x" * 4096
    (result,) = feed(pipeline, clock, (T0, raw))
    assert (result.outcome, result.error_class) == (Outcome.DEAD_LETTER, "size")


# -- conservation ---------------------------------------------------------------------------

_RELEVANT = {"2777-1": "mg/dL", "17861-6": "mg/dL", "1751-7": "g/dL"}
_OBX = st.tuples(
    st.sampled_from([*_RELEVANT, "2345-7"]),  # 2345-7 glucose: not catalogued
    st.sampled_from(["", "1"]),  # OBX-4
    st.sampled_from(["2.1", "0,8", "", "<1.0", "high"]),
    st.sampled_from(["mg/dL", "g/dL", "MG/DL", "widgets", ""]),
    st.sampled_from(["F", "C", "P", "U", "X"]),
)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(groups=st.lists(st.lists(_OBX, min_size=1, max_size=4), min_size=1, max_size=3))
def test_every_relevant_obx_is_stored_or_dead_lettered(pipeline, clock, groups) -> None:
    control_id = "CONS" + hashlib.sha256(repr(groups).encode()).hexdigest()[:12]
    mrn = f"C{control_id[-10:]}"
    segments = [_header("ORU^R01^ORU_R01", T0, control_id, mrn)]
    relevant = 0
    for g, obxs in enumerate(groups, 1):
        segments.append(f"OBR|{g}|G{g}{control_id}|F{g}|CHEM^Chemistry^L|||{ts(T0)}")
        for n, (code, sub, value, unit, status) in enumerate(obxs, 1):
            relevant += code in _RELEVANT
            segments.append(
                f"OBX|{n}|NM|{code}^Test^LN|{sub}|{value}|{unit}|||||{status}|||{ts(T0)}"
            )
    feed(pipeline, clock, (T0, "\r".join(segments).encode()))
    with Session(pipeline.engine) as session:
        stored = session.exec(
            select(func.count())
            .select_from(LabResultRow)
            .where(LabResultRow.patient_id == patient_key(mrn, "GH"))
            .where(LabResultRow.analyte.in_(("phosphate", "calcium", "albumin")))  # type: ignore[attr-defined]
        ).one()
        letters = session.exec(
            select(func.count()).select_from(DeadLetter).where(DeadLetter.control_id == control_id)
        ).one()
    # Two OBX of one code, sub-id and OBR are two results; none overwrites another.
    assert stored + letters == relevant
