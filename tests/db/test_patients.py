"""Batch patient locking, reading and saving (service.db.patients)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlmodel import Session

from parsers.events import Patient as PatientEvent
from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.db.patients import lock_patients, mark_exposure, save_patients

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _event(pid: str, location: str = "4W/401/A") -> PatientEvent:
    return PatientEvent(pid, "HOSP", "MR", location, "GH", "MED")


def test_lock_patients_creates_reads_and_saves(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        first = lock_patients(session, {"P1": _event("P1"), "P2": _event("P2")}, NOW)
        assert sorted(first) == ["P1", "P2"]
        assert not first["P1"].has_iron and first["P1"].location == "4W/401/A"
        mark_exposure(first["P1"], "iv_iron")
        save_patients(session, first.values(), NOW)
    with Session(engine) as session, session.begin():
        # Twice in one transaction: each call returns only its own patients.
        again = lock_patients(session, {"P1": _event("P1", "ICU/1/A")}, NOW)
        assert list(again) == ["P1"] and again["P1"].has_iron and again["P1"].changed
        save_patients(session, again.values(), NOW)
        other = lock_patients(session, {"P3": _event("P3")}, NOW)
        assert list(other) == ["P3"]
    with Session(engine) as session:
        rows = session.execute(text("SELECT patient_id, location FROM patients ORDER BY 1"))
        assert rows.all() == [("P1", "ICU/1/A"), ("P2", "4W/401/A"), ("P3", "4W/401/A")]
    engine.dispose()
