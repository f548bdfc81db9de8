"""Queries of the pipeline transaction: de-duplication, patient lock, results, orders, history.

Every function takes the caller's ``Session`` and never commits: the pipeline owns the
transaction, so a message's effects are stored all together or not at all.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from alerts.model import (
    ANALYTE_ALBUMIN,
    ANALYTE_CORRECTED_CALCIUM,
    TRIGGER_ANALYTES,
    AlertState,
    PatientHistory,
    Severity,
    StoredOrder,
    StoredResult,
)
from parsers.events import LabResult, MedicationOrder, MessageHeader
from parsers.events import Patient as PatientEvent
from service.db.models import Alert, LabResultRow, MedicationOrderRow, Patient, ProcessedMessage

EVALUATED_ANALYTES = frozenset((*TRIGGER_ANALYTES, ANALYTE_CORRECTED_CALCIUM, ANALYTE_ALBUMIN))


def _insert(session: Session, model: type[Any]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def _table(model: type[Any]) -> Table:
    return model.__table__  # type: ignore[no-any-return]


@functools.cache
def _statements(dialect: str) -> dict[str, Any]:
    """Core statements built once per dialect and executed with parameters (executemany).

    Building ORM-enabled upserts per row cost more than the database work itself.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # RETURNING says whether the row was inserted on every backend (psycopg reports
    # rowcount -1 for these statements).
    processed = (
        insert(_table(ProcessedMessage))
        .on_conflict_do_nothing(index_elements=["sending_facility", "control_id"])
        .returning(_table(ProcessedMessage).c.id)
    )
    patient = insert(_table(Patient)).on_conflict_do_nothing(index_elements=["patient_id"])
    results = insert(_table(LabResultRow))
    keys = ("patient_id", "result_key")
    results = results.on_conflict_do_update(
        index_elements=list(keys),
        set_={
            c.name: results.excluded[c.name]
            for c in _table(LabResultRow).c
            if c.name not in (*keys, "id")
        },
        # Messages arrive out of order: an older version never overwrites a newer one.
        where=_table(LabResultRow).c.message_time <= results.excluded.message_time,
    )
    orders = insert(_table(MedicationOrderRow)).on_conflict_do_nothing(
        index_elements=["patient_id", "control_id", "order_key"]
    )
    return {"processed": processed, "patient": patient, "results": results, "orders": orders}


def _run(session: Session, name: str, params: Any) -> Any:
    connection = session.connection()
    return connection.execute(_statements(connection.dialect.name)[name], params)


def claim_message(session: Session, header: MessageHeader, now: datetime) -> bool:
    """Record sending facility + MSH-10; False when this message was processed before."""
    result = _run(
        session,
        "processed",
        {
            "sending_facility": header.sending_facility,
            "control_id": header.control_id,
            "message_type": header.message_type,
            "processed_at": now,
        },
    )
    return result.first() is not None


def lock_patient(session: Session, event: PatientEvent, now: datetime) -> Patient:
    """Create the patient if new, then lock its row until the transaction ends.

    The lock serialises all work on one patient across consumer instances (PostgreSQL
    ``SELECT ... FOR UPDATE``; SQLite has one writer anyway), so correctness never depends on a
    patient's messages landing on one partition.
    """
    _run(
        session,
        "patient",
        {
            "patient_id": event.id,
            "authority": event.authority,
            "location": event.location,
            "facility": event.facility,
            "service": event.service,
            "has_iron": False,
            "has_antiresorptive": False,
            "updated_at": now,
        },
    )
    row = session.execute(
        select(Patient).where(Patient.patient_id == event.id).with_for_update()
    ).scalar_one()
    if event.location and (row.location, row.facility, row.service) != (
        event.location,
        event.facility,
        event.service,
    ):
        row.location, row.facility, row.service = event.location, event.facility, event.service
        row.updated_at = now
    return row


def result_key(result: LabResult) -> str:
    """Identity of a result across corrections: its order and code (else its time and code)."""
    order = result.filler_order_id or result.placer_order_id
    anchor = order if order else result.observed_at.isoformat()
    return f"{anchor}|{result.code.upper()}"[:255]


def save_results(
    session: Session,
    patient_id: str,
    results: Iterable[LabResult],
    header: MessageHeader,
    now: datetime,
) -> int:
    """Upsert each result by its key; a later message (correction, deletion) replaces it."""
    message_time = header.message_time or now
    rows = [
        {
            "patient_id": patient_id,
            "result_key": result_key(result),
            "analyte": result.analyte,
            "code": result.code[:64],
            "value": result.value,
            "comparator": result.comparator,
            "value_text": result.value_text[:255],
            "unit": result.unit[:32],
            "reference_range": result.reference_range[:64],
            "abnormal_flags": result.abnormal_flags[:32],
            "status": result.status[:2],
            "observed_at": result.observed_at,
            "received_at": now,
            "message_time": message_time,
            "control_id": header.control_id,
        }
        for result in results
    ]
    if rows:
        _run(session, "results", rows)
    return len(rows)


def order_key(order: MedicationOrder, header: MessageHeader) -> str:
    return (order.placer_order_id or order.filler_order_id or header.control_id)[:199]


def save_order(
    session: Session,
    patient: Patient,
    order: MedicationOrder,
    drug_class: str,
    header: MessageHeader,
) -> None:
    _run(
        session,
        "orders",
        {
            "patient_id": patient.patient_id,
            "order_key": order_key(order, header),
            "order_control": order.order_control[:4],
            "drug": order.drug or "",
            "drug_class": drug_class,
            "route": order.route[:32],
            "dose_at": order.dose_at,
            "end_at": order.end_at,
            "message_time": header.message_time or order.dose_at,
            "ordering_provider": order.ordering_provider[:64],
            "administered": order.administered,
            "control_id": header.control_id,
        },
    )
    if drug_class == "iv_iron":
        patient.has_iron = True
    elif drug_class == "antiresorptive":
        patient.has_antiresorptive = True


def load_history(
    session: Session, patient: Patient, now: datetime, history_days: int
) -> PatientHistory:
    """All catalogued orders of the patient and its mineral results of the last history_days."""
    orders = session.execute(
        select(MedicationOrderRow).where(MedicationOrderRow.patient_id == patient.patient_id)
    ).scalars()
    since = now - timedelta(days=history_days)
    results = session.execute(
        select(LabResultRow).where(
            LabResultRow.patient_id == patient.patient_id,
            LabResultRow.observed_at >= since,
            LabResultRow.analyte.in_(EVALUATED_ANALYTES),  # type: ignore[attr-defined]
        )
    ).scalars()
    return PatientHistory(
        patient_id=patient.patient_id,
        location=patient.location,
        orders=tuple(
            StoredOrder(
                order_key=o.order_key,
                order_control=o.order_control,
                drug=o.drug,
                route=o.route,
                dose_at=o.dose_at,
                end_at=o.end_at,
                message_time=o.message_time,
                ordering_provider=o.ordering_provider,
                administered=o.administered,
            )
            for o in orders
        ),
        results=tuple(
            StoredResult(
                result_key=r.result_key,
                analyte=r.analyte,
                value=r.value,
                comparator=r.comparator,
                unit=r.unit,
                status=r.status,
                observed_at=r.observed_at,
                received_at=r.received_at,
                reference_range=r.reference_range,
                code=r.code,
            )
            for r in results
        ),
    )


def load_alerts(session: Session, patient_id: str) -> dict[str, Alert]:
    rows = session.execute(select(Alert).where(Alert.patient_id == patient_id)).scalars()
    return {row.dedup_key: row for row in rows}


def alert_state(row: Alert) -> AlertState:
    return AlertState(
        dedup_key=row.dedup_key,
        severity=Severity.parse(row.severity),
        value_canonical=row.value_canonical,
        status=row.status,
    )


def touch_patient(session: Session, patient_id: str, now: datetime) -> None:
    session.execute(update(Patient).where(Patient.patient_id == patient_id).values(updated_at=now))
