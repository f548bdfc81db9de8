"""Patients as the API addresses them (``ref``, an opaque row id), their orders and exposures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.exposures import derive_exposures
from alerts.identity import patient_key
from alerts.model import Exposure
from service.api.context import ApiContext
from service.db.models import MedicationOrderRow, Patient
from service.db.patient_history import stored_order

# Rows per IN (...) list: well under every database's bound-parameter limit.
_CHUNK = 500


def refs(session: Session, patient_ids: set[str]) -> dict[str, int]:
    """Patient key -> ref for the keys that have a patient row."""
    if not patient_ids:
        return {}
    rows = session.execute(
        select(col(Patient.patient_id), col(Patient.id)).where(
            col(Patient.patient_id).in_(patient_ids)
        )
    ).all()
    return {pid: ref for pid, ref in rows}


def patient_by_ref(session: Session, ref: int) -> Patient | None:
    return session.get(Patient, ref)


def patient_ref_for(ctx: ApiContext, patient_id: str, authority: str = "") -> int | None:
    """The ref of the patient with this identifier and assigning authority. Without an
    authority, the one patient whose identifier it is, if only one authority has it (an
    identifier that two authorities assigned names nobody until the authority is given).
    Blocks on the database."""
    with Session(ctx.engine) as session:
        ref = session.execute(
            select(col(Patient.id)).where(
                col(Patient.patient_id) == patient_key(patient_id, authority)
            )
        ).scalar_one_or_none()
        if ref is not None or authority:
            return ref
        prefix = patient_key(patient_id, "") + "^"
        rows = session.execute(
            select(col(Patient.id), col(Patient.patient_id)).where(
                col(Patient.patient_id).startswith(prefix, autoescape=True)
            )
        ).all()
        return rows[0][0] if len(rows) == 1 else None


def orders_by_patient(
    session: Session, patient_ids: Sequence[str]
) -> dict[str, list[MedicationOrderRow]]:
    """Every stored order message of these patients, by patient key."""
    by_patient: dict[str, list[MedicationOrderRow]] = defaultdict(list)
    for chunk_start in range(0, len(patient_ids), _CHUNK):
        chunk = patient_ids[chunk_start : chunk_start + _CHUNK]
        for order in session.execute(
            select(MedicationOrderRow).where(col(MedicationOrderRow.patient_id).in_(chunk))
        ).scalars():
            by_patient[order.patient_id].append(order)
    return by_patient


def exposures_of(
    ctx: ApiContext, orders: Sequence[MedicationOrderRow], now: datetime
) -> list[Exposure]:
    """What the patient received, as the rules see it (``alerts.exposures``)."""
    return derive_exposures(
        [stored_order(o) for o in orders], ctx.clinical.drugs, ctx.clinical.rules, now
    )
