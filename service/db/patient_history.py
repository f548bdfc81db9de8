"""A patient's stored orders and results as the clinical core reads them (``PatientHistory``).

The pipeline's evaluation, the reminder sweep and the API's patient views read a history
the same way through ``load_history``. Reads only, in the caller's session; blocks on the
database and never commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.model import (
    ANALYTE_ALBUMIN,
    ANALYTE_CORRECTED_CALCIUM,
    TRIGGER_ANALYTES,
    PatientHistory,
    StoredOrder,
    StoredResult,
)
from service.db.models import LabResultRow, MedicationOrderRow, Patient
from service.db.patients import PatientRecord

# The analytes the rules read: results of these are checked, stored for evaluation and
# loaded into a history; other results are stored as they come.
EVALUATED_ANALYTES = frozenset((*TRIGGER_ANALYTES, ANALYTE_CORRECTED_CALCIUM, ANALYTE_ALBUMIN))


def load_history(
    session: Session,
    patient: Patient | PatientRecord,
    now: datetime,
    history_days: int,
    hidden: frozenset[str] = frozenset(),
) -> PatientHistory:
    """All catalogued orders of the patient and its mineral results of the last history_days.

    Rows written by the messages whose control ids are ``hidden`` are left out: a batch
    evaluates each message against what had arrived up to it, as message-by-message
    processing would.
    """
    orders = session.execute(
        select(MedicationOrderRow).where(col(MedicationOrderRow.patient_id) == patient.patient_id)
    ).scalars()
    since = now - timedelta(days=history_days)
    results = session.execute(
        select(LabResultRow).where(
            col(LabResultRow.patient_id) == patient.patient_id,
            col(LabResultRow.observed_at) >= since,
            LabResultRow.analyte.in_(EVALUATED_ANALYTES),  # type: ignore[attr-defined]
        )
    ).scalars()
    return PatientHistory(
        patient_id=patient.patient_id,
        location=patient.location,
        orders=tuple(stored_order(o) for o in orders if _message_of(o) not in hidden),
        results=tuple(stored_result(r) for r in results if r.control_id not in hidden),
    )


def _message_of(row: MedicationOrderRow) -> str:
    """The control id of the message that wrote an order row (see ``order_row``)."""
    base, mark, position = row.control_id.rpartition("#")
    return base if mark and position.isdigit() else row.control_id


def stored_order(row: MedicationOrderRow) -> StoredOrder:
    """A stored order message as the clinical core reads it."""
    return StoredOrder(
        order_key=row.order_key,
        order_control=row.order_control,
        drug=row.drug,
        route=row.route,
        dose_at=row.dose_at,
        end_at=row.end_at,
        message_time=row.message_time,
        ordering_provider=row.ordering_provider,
        administered=row.administered,
        completion_status=row.completion_status,
    )


def stored_result(row: LabResultRow) -> StoredResult:
    """A stored result as the clinical core reads it."""
    return StoredResult(
        result_key=row.result_key,
        analyte=row.analyte,
        value=row.value,
        comparator=row.comparator,
        unit=row.unit,
        status=row.status,
        observed_at=row.observed_at,
        received_at=row.received_at,
        reference_range=row.reference_range,
        code=row.code,
        specimen=specimen_of(row.result_key),
    )


def specimen_of(result_key: str) -> str:
    """The order (OBR) a stored result was reported in: the anchor of its result key, or ""
    when the result had no order id (its anchor is then its observation time).

    The inverse of ``service.ingest.store.result_key``, which writes the key."""
    anchor = result_key.partition("|")[0]
    return "" if _looks_like_time(anchor) else anchor


def _looks_like_time(anchor: str) -> bool:
    # store.result_key() anchors a result without an order id on observed_at.isoformat().
    return len(anchor) >= 19 and anchor[4] == "-" and anchor[10] == "T"
