"""The patients a batch transaction touches: lock, read, create, change, save.

Read and written with Core statements into ``PatientRecord`` (not ORM objects): a batch holds
hundreds of patients, and loading them as ORM instances cost more than the rest of the
transaction's Python (profile at 5,900 msg/s: 13 % of the daemon's time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, select, text, update
from sqlmodel import Session

from parsers.events import Patient as PatientEvent
from service.db.dialect import Conflict, insert_on_conflict
from service.db.engine import one_of_ids
from service.db.models import Patient
from service.runtime.clinical import ANTIRESORPTIVE, IV_IRON

_PATIENTS: Table = Patient.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class PatientRecord:
    """A ``patients`` row as one transaction reads and changes it (``save_patients``)."""

    patient_id: str
    location: str
    facility: str
    service: str
    has_iron: bool
    has_antiresorptive: bool
    changed: bool = False

    @property
    def exposed_to_both(self) -> bool:
        """Orders of both interacting classes: only then can the rules find anything."""
        return self.has_iron and self.has_antiresorptive


def lock_patients(
    session: Session,
    events: Mapping[str, PatientEvent],
    now: datetime,
    *,
    also_lock: Iterable[str] = (),
) -> dict[str, PatientRecord]:
    """Create the patients that are new, then lock them until the transaction ends.

    The lock serialises all work on one patient across consumer instances (see
    ``lock_patient_keys``), so correctness never depends on a patient's messages landing on one
    partition: a message stored concurrently with an order for the same patient is seen by
    that order's evaluation, or evaluated itself after it. Rows are read after the locks are
    held, so they show everything committed by the previous holder.

    Locations in ``events`` that differ from the stored ones mark the record changed.
    ``also_lock`` are further patients to lock (not create) in the same ordered call: the prior
    identifiers of a merge in the batch, so that every lock of the transaction is taken in
    one key order and two transactions cannot wait on each other.
    """
    if not events:
        return {}
    ids = sorted(events)
    lock_patient_keys(session, sorted({*ids, *also_lock}))
    patients = _select(session, ids)
    missing = sorted(set(events) - set(patients))
    if missing:
        _insert(session, [_new_row(pid, events[pid], now) for pid in missing])
        patients.update(_select(session, missing))
    for pid, record in patients.items():
        event = events[pid]
        current = _place(event)
        if event.location and (record.location, record.facility, record.service) != current:
            record.location, record.facility, record.service = current
            record.changed = True
    return patients


def mark_exposure(patient: PatientRecord, drug_class: str) -> None:
    """Remember that the patient has an order of this class (evaluation is skipped without)."""
    if drug_class == IV_IRON and not patient.has_iron:
        patient.has_iron = patient.changed = True
    elif drug_class == ANTIRESORPTIVE and not patient.has_antiresorptive:
        patient.has_antiresorptive = patient.changed = True


def save_patients(session: Session, patients: Iterable[PatientRecord], now: datetime) -> None:
    """Write the changed records back (under the locks ``lock_patients`` took)."""
    changed = [p for p in patients if p.changed]
    if not changed:
        return
    session.connection().execute(
        _SAVE,
        [
            {
                "pid": p.patient_id,
                "location": p.location,
                "facility": p.facility,
                "service": p.service,
                "has_iron": p.has_iron,
                "has_antiresorptive": p.has_antiresorptive,
                "updated_at": now,
            }
            for p in changed
        ],
    )
    for p in changed:
        p.changed = False


_SAVE = (
    update(_PATIENTS)
    .where(_PATIENTS.c.patient_id == bindparam("pid"))
    .values(
        location=bindparam("location"),
        facility=bindparam("facility"),
        service=bindparam("service"),
        has_iron=bindparam("has_iron"),
        has_antiresorptive=bindparam("has_antiresorptive"),
        updated_at=bindparam("updated_at"),
    )
)

_COLUMNS = (
    _PATIENTS.c.patient_id,
    _PATIENTS.c.location,
    _PATIENTS.c.facility,
    _PATIENTS.c.service,
    _PATIENTS.c.has_iron,
    _PATIENTS.c.has_antiresorptive,
)


def _select(session: Session, ids: list[str]) -> dict[str, PatientRecord]:
    connection = session.connection()
    statement = select(*_COLUMNS).where(one_of_ids(_PATIENTS.c.patient_id, connection.dialect.name))
    return {row[0]: PatientRecord(*row) for row in connection.execute(statement, {"ids": ids})}


def _place(event: PatientEvent) -> tuple[str, str, str]:
    """Location, facility and service cut to their columns: a long PV1-3 is display text, and
    must not make the message's results fail to store."""
    return event.location[:128], event.facility[:64], event.service[:64]


def _new_row(pid: str, event: PatientEvent, now: datetime) -> dict[str, Any]:
    location, facility, service = _place(event)
    return {
        "patient_id": pid,
        "authority": event.authority[:64],
        "location": location,
        "facility": facility,
        "service": service,
        "has_iron": False,
        "has_antiresorptive": False,
        "updated_at": now,
    }


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    connection = session.connection()
    new_only = Conflict(key=("patient_id",))
    connection.execute(insert_on_conflict(_PATIENTS, connection.dialect.name, new_only), rows)


def lock_patient_keys(session: Session, patient_ids: Iterable[str]) -> None:
    """Take the per-patient locks of ``patient_ids`` until the transaction ends; nothing else.

    The one patient lock: ``lock_patients`` (the pipeline), the reminder sweep and ADT merges
    all take it, so work on one patient by any of them is serialised. Transaction-scoped
    advisory locks on a 64-bit hash of each patient id: held in memory, no tuple writes
    (``SELECT ... FOR UPDATE`` costs a heap write per patient per batch), and released by
    commit or rollback. Taken in key order within one call, so two callers locking their
    whole sets at once cannot deadlock. A hash collision only serialises two patients more
    than needed. SQLite has one writer at a time and needs none.

    Blocks until every lock is granted (or the session's ``lock_timeout`` raises
    OperationalError); creates and reads no rows.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(pid) for pid in patient_ids})
    if not keys:
        return
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS ordered"
        ),
        {"keys": keys},
    )


def _lock_key(patient_id: str) -> int:
    return int.from_bytes(hashlib.sha256(patient_id.encode()).digest()[:8], "big", signed=True)
