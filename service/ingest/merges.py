"""Patient merges (ADT^A40/A18): everything filed under a prior identifier moves to the
surviving one, so a merge can reveal an interaction and never hide one.

Runs inside the pipeline transaction, the surviving patient locked by the pipeline
(``lock_patients``); ``merge_patients`` takes the prior patients' locks with the same
``lock_patient_keys`` (never ``SELECT ... FOR UPDATE``), so a merge and a pipeline batch or a
reminder sweep for the same patient exclude each other. Alerts are re-keyed to the surviving
identifier by ``service.notify.lifecycle`` (the one writer of alerts), so a merge neither
re-pages what was already paged nor "resolves" it. A prior identifier becomes an alias:
messages that still arrive under it are filed under the surviving patient.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from service.db.engine import one_of_ids
from service.db.models import LabResultRow, MedicationOrderRow, Patient
from service.db.patients import PatientRecord, lock_patient_keys
from service.db.prevention import AdvisoryRow, PatientAlias, ReminderRow
from service.notify.lifecycle import rekey_for_merge


def resolve_aliases(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """prior id → surviving id, for the ids that were merged away.

    One query: ``merge_patients`` keeps aliases one hop deep (a merged survivor's aliases are
    repointed to the new survivor).
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    prior = col(PatientAlias.prior_id)
    matches = one_of_ids(prior, session.get_bind().dialect.name)
    rows = session.execute(
        select(prior, col(PatientAlias.surviving_id)).where(matches), {"ids": wanted}
    ).all()
    return {prior: surviving for prior, surviving in rows}


def merge_patients(
    session: Session,
    surviving: PatientRecord,
    prior_ids: Iterable[str],
    control_id: str,
    now: datetime,
) -> list[str]:
    """Move the priors' rows to ``surviving``; return the prior ids that existed.

    Blocks until the priors' patient locks are free (a batch or a sweep on them commits).
    The caller holds the survivor's lock.
    """
    merged = []
    priors = sorted(set(prior_ids) - {surviving.patient_id})
    lock_patient_keys(session, priors)
    for prior_id in priors:
        prior = session.execute(
            select(Patient).where(col(Patient.patient_id) == prior_id)
        ).scalar_one_or_none()
        _add_alias(session, prior_id, surviving.patient_id, control_id, now)
        if prior is None:
            continue
        merged.append(prior_id)
        _move_results(session, prior_id, surviving.patient_id)
        _move_orders(session, prior_id, surviving.patient_id)
        rekey_for_merge(session, prior_id, surviving.patient_id, now)
        for model in (AdvisoryRow, ReminderRow):
            session.execute(
                update(model)
                .where(col(model.patient_id) == prior_id)  # type: ignore[attr-defined]
                .values(patient_id=surviving.patient_id)
            )
        surviving.has_iron = surviving.has_iron or prior.has_iron
        surviving.has_antiresorptive = surviving.has_antiresorptive or prior.has_antiresorptive
        surviving.changed = True
        session.delete(prior)
    # Earlier aliases that pointed at a prior now point at the survivor.
    if merged:
        session.execute(
            update(PatientAlias)
            .where(col(PatientAlias.surviving_id).in_(merged))
            .values(surviving_id=surviving.patient_id)
        )
    return merged


def _add_alias(
    session: Session, prior_id: str, surviving_id: str, control_id: str, now: datetime
) -> None:
    existing = session.get(PatientAlias, prior_id)
    if existing is None:
        session.add(
            PatientAlias(
                prior_id=prior_id,
                surviving_id=surviving_id,
                merged_at=now,
                control_id=control_id[:199],
            )
        )
    else:
        existing.surviving_id, existing.merged_at = surviving_id, now


def _move_results(session: Session, prior_id: str, surviving_id: str) -> None:
    # The same result filed under both identifiers (a feed sent it twice): keep the
    # survivor's copy, drop the prior's, then move the rest.
    kept = select(col(LabResultRow.result_key)).where(col(LabResultRow.patient_id) == surviving_id)
    session.execute(
        delete(LabResultRow).where(
            col(LabResultRow.patient_id) == prior_id, col(LabResultRow.result_key).in_(kept)
        )
    )
    session.execute(
        update(LabResultRow)
        .where(col(LabResultRow.patient_id) == prior_id)
        .values(patient_id=surviving_id)
    )


def _move_orders(session: Session, prior_id: str, surviving_id: str) -> None:
    survivor = select(col(MedicationOrderRow.control_id)).where(
        col(MedicationOrderRow.patient_id) == surviving_id
    )
    session.execute(
        delete(MedicationOrderRow).where(
            col(MedicationOrderRow.patient_id) == prior_id,
            col(MedicationOrderRow.control_id).in_(survivor),
        )
    )
    session.execute(
        update(MedicationOrderRow)
        .where(col(MedicationOrderRow.patient_id) == prior_id)
        .values(patient_id=surviving_id)
    )
