"""The pipeline transaction on a real database: what gets stored, paged, resolved, dead-lettered.

Each case drives messages through Pipeline.process with a clock the test controls.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from alerts.identity import patient_key
from service.db.models import Alert, AlertEvent, DeadLetter, LabResultRow, NotificationRow
from service.ingest.pipeline import Incoming, Outcome, Pipeline
from service.runtime.clock import FixedClock
from tests.ingest.conftest import T0
from tests.messages import DENOSUMAB, FERROUS_SULFATE, oru, rde

MRN = "MRN00000001"


def feed(pipeline: Pipeline, clock: FixedClock, *messages: tuple[datetime, bytes]) -> list:
    """Process each (processing time, message) in order."""
    results = []
    for moment, raw in messages:
        clock.moment = moment
        results.append(pipeline.process(Incoming(raw, source="replay")))
    return results


def notifications(pipeline: Pipeline) -> list[NotificationRow]:
    """The alerts' notifications (the order-time advisory has tests in tests/notify/prevention)."""
    query = select(NotificationRow).where(NotificationRow.event != "advisory")
    with Session(pipeline.engine) as session:
        return list(session.exec(query.order_by(NotificationRow.id)).all())


def exposure(pipeline: Pipeline, clock: FixedClock) -> None:
    """Denosumab 14 days before ferric carboxymaltose at T0."""
    feed(
        pipeline,
        clock,
        (T0 - timedelta(days=14), rde(MRN, T0 - timedelta(days=14), drug=DENOSUMAB, route="SC")),
        (T0, rde(MRN, T0)),
    )


def test_low_phosphate_after_iron_on_denosumab_pages_once(pipeline, clock) -> None:
    exposure(pipeline, clock)
    day14 = T0 + timedelta(days=14)
    message = oru(MRN, day14, value="1.4")
    first, again = feed(pipeline, clock, (day14, message), (day14, message))
    assert first.outcome is Outcome.STORED and len(first.notifications) == 1
    page = first.notifications[0].to_json()
    assert (page["event"], page["severity"], page["analyte"]) == ("alert", "high", "phosphate")
    assert page["iron"]["days_since"] == 14
    # The same MSH-10 again changes nothing.
    assert again.outcome is Outcome.DUPLICATE
    assert len(notifications(pipeline)) == 1


def test_worse_value_updates_and_correction_resolves(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d10, d12 = T0 + timedelta(days=10), T0 + timedelta(days=12)
    feed(pipeline, clock, (d10, oru(MRN, d10, value="1.8", order="A1")))
    feed(pipeline, clock, (d12, oru(MRN, d12, value="0.8", order="A2")))
    # Both results are corrected to normal values: the alert resolves.
    feed(
        pipeline,
        clock,
        (d12 + timedelta(hours=1), oru(MRN, d10, value="3.1", order="A1", status="C")),
        (d12 + timedelta(hours=2), oru(MRN, d12, value="3.3", order="A2", status="C")),
    )
    events = [(n.event, n.severity) for n in notifications(pipeline)]
    assert events == [("alert", "high"), ("update", "critical"), ("resolved", "critical")]


def test_preliminary_result_does_not_page(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d9 = T0 + timedelta(days=9)
    (result,) = feed(pipeline, clock, (d9, oru(MRN, d9, value="1.2", status="P")))
    assert result.outcome is Outcome.STORED and result.notifications == []


def test_late_antiresorptive_order_pages_for_stored_result(pipeline, clock) -> None:
    d12 = T0 + timedelta(days=12)
    feed(
        pipeline,
        clock,
        (T0, rde(MRN, T0)),
        (d12, oru(MRN, d12, value="7.6", code="17861-6", name="Calcium", ref="8.5-10.5")),
    )
    # Denosumab given 3 days after the iron, its order arriving a day after the result.
    late = T0 + timedelta(days=13)
    (result,) = feed(
        pipeline,
        clock,
        (late, rde(MRN, T0 + timedelta(days=3), drug=DENOSUMAB, route="SC", sent=late)),
    )
    assert [n.analyte for n in result.notifications] == ["calcium"]


def test_backfilled_finding_goes_to_worklist_not_pager(pipeline, clock) -> None:
    d12 = T0 + timedelta(days=12)
    feed(pipeline, clock, (T0, rde(MRN, T0)), (d12, oru(MRN, d12, value="1.5")))
    # The antiresorptive order arrives 20 days after the result: too old to page.
    late = d12 + timedelta(days=20)
    (result,) = feed(
        pipeline, clock, (late, rde(MRN, T0 - timedelta(days=5), drug=DENOSUMAB, sent=late))
    )
    # Announced, never silent: a notice that no route pages (severity info), carrying the
    # severity it would have paged with and why it did not.
    (notice,) = result.notifications
    assert (notice.event, notice.severity, notice.pages) == ("alert", "info", False)
    assert notice.extra["worklist"] is True and notice.extra["finding_severity"] == "high"
    with Session(pipeline.engine) as session:
        alert = session.exec(select(Alert)).one()
        kinds = [e.kind for e in session.exec(select(AlertEvent)).all()]
    assert (alert.status, alert.backfilled) == ("worklist", True)
    assert "worklist" in kinds, "the alert's history says why it did not page"


def test_oral_iron_never_opens_a_window(pipeline, clock) -> None:
    feed(
        pipeline,
        clock,
        (T0 - timedelta(days=14), rde(MRN, T0 - timedelta(days=14), drug=DENOSUMAB)),
        (T0, rde(MRN, T0, drug=FERROUS_SULFATE, route="PO")),
    )
    d14 = T0 + timedelta(days=14)
    (result,) = feed(pipeline, clock, (d14, oru(MRN, d14, value="0.9")))
    assert result.notifications == []


def test_unknown_unit_dead_letters_the_message_and_stores_nothing(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d14 = T0 + timedelta(days=14)
    (result,) = feed(pipeline, clock, (d14, oru(MRN, d14, value="1.4", unit="furlongs")))
    assert (result.outcome, result.error_class) == (Outcome.DEAD_LETTER, "unit")
    with Session(pipeline.engine) as session:
        assert session.exec(select(LabResultRow)).all() == []
        (dead,) = session.exec(select(DeadLetter)).all()
    # The reason says where; the unit itself is only in the stored message.
    assert "OBX-6" in dead.reason and "furlongs" not in dead.reason
    assert b"furlongs" in dead.raw


def test_garbage_is_dead_lettered_once_even_if_redelivered(pipeline, clock) -> None:
    junk = Incoming(b"\x00\x01not hl7 at all", source="kafka", topic="t", partition=0, offset=7)
    assert pipeline.process(junk).outcome is Outcome.DEAD_LETTER
    assert pipeline.process(junk).outcome is Outcome.DEAD_LETTER
    with Session(pipeline.engine) as session:
        (dead,) = session.exec(select(DeadLetter)).all()
    assert (dead.topic, dead.partition, dead.offset, dead.error_class) == ("t", 0, 7, "parse")


def test_wrong_patient_status_retracts_the_alert(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d14 = T0 + timedelta(days=14)
    feed(pipeline, clock, (d14, oru(MRN, d14, value="1.4", order="W1")))
    feed(
        pipeline,
        clock,
        (d14 + timedelta(hours=3), oru(MRN, d14, value="1.4", order="W1", status="W")),
    )
    assert [n.event for n in notifications(pipeline)] == ["alert", "resolved"]


def test_a_batch_decides_as_message_by_message_processing(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d10, d12 = T0 + timedelta(days=10), T0 + timedelta(days=12)
    clock.moment = d12
    # A high result and then a worse one in the same fetched batch: alert, then update.
    results = pipeline.process_batch(
        [
            Incoming(oru(MRN, d10, value="1.8", order="B1"), source="replay"),
            Incoming(oru(MRN, d12, value="0.8", order="B2"), source="replay"),
        ]
    )
    assert [[n.event for n in r.notifications] for r in results] == [["alert"], ["update"]]


def test_one_poison_message_does_not_sink_its_batch(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d14 = T0 + timedelta(days=14)
    clock.moment = d14
    # A control id longer than the de-duplication key allows is refused before the
    # transaction, alike on every database (it used to break PostgreSQL's batch), and only
    # that message is dead-lettered.
    poison = oru("MRN00000002", d14, value="3.0", control_id="X" * 300)
    results = pipeline.process_batch(
        [Incoming(poison, source="replay"), Incoming(oru(MRN, d14, value="1.4"), source="replay")]
    )
    outcomes = [r.outcome for r in results]
    assert outcomes[1] is Outcome.STORED and len(results[1].notifications) == 1
    assert outcomes[0] is Outcome.DEAD_LETTER and results[0].error_class == "parse"


def test_long_location_is_cut_to_its_column_not_dead_lettered(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d14 = T0 + timedelta(days=14)
    raw = oru(MRN, d14, value="1.4").replace(b"PV1|1|I|4W^412^B^GH", b"PV1|1|I|" + b"W" * 300)
    (result,) = feed(pipeline, clock, (d14, raw))
    assert result.outcome is Outcome.STORED and len(result.notifications) == 1


def merge(surviving: str, prior: str, sent: datetime, trigger: str = "A40") -> bytes:
    segments = [
        f"MSH|^~\\&|ADT|GENERAL HOSPITAL|LABSENTINEL|GH|{sent:%Y%m%d%H%M%S}||ADT^{trigger}|"
        f"M{sent:%H%M%S%f}|P|2.5.1",
        f"EVN|{trigger}|{sent:%Y%m%d%H%M%S}",
        f"PID|1||{surviving}^^^GH^MR||TESTPATIENT^ALPHA",
        f"MRG|{prior}^^^GH^MR",
    ]
    return "\r".join(segments).encode()


def test_merge_reveals_an_interaction_split_across_two_identifiers(pipeline, clock) -> None:
    # Denosumab was filed under a temporary MRN; iron and the low phosphate under the real one.
    temporary = "MRN00000099"
    feed(
        pipeline,
        clock,
        (
            T0 - timedelta(days=14),
            rde(temporary, T0 - timedelta(days=14), drug=DENOSUMAB, route="SC"),
        ),
    )
    d14 = T0 + timedelta(days=14)
    feed(pipeline, clock, (T0, rde(MRN, T0)), (d14, oru(MRN, d14, value="1.4")))
    assert notifications(pipeline) == []
    (merged,) = feed(pipeline, clock, (d14 + timedelta(hours=1), merge(MRN, temporary, d14)))
    assert [(n.event, n.patient_id) for n in merged.notifications] == [
        ("alert", patient_key(MRN, "GH"))
    ]
    # A late result sent under the merged-away MRN is filed under the survivor: an update.
    d15 = d14 + timedelta(days=1)
    (late,) = feed(pipeline, clock, (d15, oru(temporary, d15, value="0.8")))
    assert [(n.event, n.patient_id) for n in late.notifications] == [
        ("update", patient_key(MRN, "GH"))
    ]


def test_merge_does_not_repage_an_alert_already_sent(pipeline, clock) -> None:
    exposure(pipeline, clock)
    d14 = T0 + timedelta(days=14)
    feed(pipeline, clock, (d14, oru(MRN, d14, value="1.4")))
    # The alerted patient is merged into a new surviving MRN: the alert moves, silently.
    (merged,) = feed(
        pipeline, clock, (d14 + timedelta(hours=2), merge("MRN00000777", MRN, d14, trigger="A18"))
    )
    assert merged.notifications == []
    with Session(pipeline.engine) as session:
        (alert,) = session.exec(select(Alert)).all()
    assert (alert.patient_id, alert.status) == ("MRN00000777^GH", "open")


def test_a_steep_fall_from_baseline_warns_before_the_absolute_threshold(pipeline, clock) -> None:
    exposure(pipeline, clock)
    baseline = T0 - timedelta(days=2)
    feed(pipeline, clock, (baseline, oru(MRN, baseline, value="4.0", order="BASE")))
    d10 = T0 + timedelta(days=10)
    # 2.7 mg/dL is above every absolute threshold but 32 % below the pre-iron 4.0.
    (result,) = feed(pipeline, clock, (d10, oru(MRN, d10, value="2.7", order="FALL")))
    assert [(n.rule, n.event, n.severity) for n in result.notifications] == [
        ("iron-antiresorptive-trend", "alert", "warning")
    ]


def test_ras_administration_time_overrides_the_scheduled_dose(pipeline, clock) -> None:
    # Iron ordered for day 0, actually given on day 5 (RXA-3): the window starts on day 5, so
    # a low phosphate on day 31 (26 days after the real dose) still pages.
    feed(
        pipeline,
        clock,
        (T0 - timedelta(days=14), rde(MRN, T0 - timedelta(days=14), drug=DENOSUMAB, route="SC")),
    )
    feed(pipeline, clock, (T0, rde(MRN, T0, order="IRON1")))
    given = T0 + timedelta(days=5)
    ras = "\r".join(
        [
            f"MSH|^~\\&|PHARM|GENERAL HOSPITAL|LABSENTINEL|GH|{given:%Y%m%d%H%M%S}||RAS^O17|"
            "RAS0001|P|2.5.1",
            f"PID|1||{MRN}^^^GH^MR",
            "ORC|RE|IRON1|IRON1F",
            f"RXA|0|1|{given:%Y%m%d%H%M%S}|{given:%Y%m%d%H%M%S}|"
            "1435169^Ferric carboxymaltose 750 mg/15 mL^RXNORM|750|mg",
            "RXR|IV",
        ]
    ).encode()
    feed(pipeline, clock, (given, ras))
    d31 = T0 + timedelta(days=31)
    (result,) = feed(pipeline, clock, (d31, oru(MRN, d31, value="1.5")))
    assert [n.event for n in result.notifications] == ["alert"]
    assert result.notifications[0].iron is not None
    assert result.notifications[0].iron.days_since == 26
