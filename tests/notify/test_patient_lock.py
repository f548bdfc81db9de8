"""One patient lock: an ADT merge and a pipeline batch for the same patient exclude each other.

PostgreSQL only (SQLite has one writer at a time). Waiting is proven by events, never by a
sleep: a short ``lock_timeout`` that must expire because the other transaction holds the lock,
and ``pg_locks`` showing the merge's backend waiting until the batch commits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from parsers.events import Patient as PatientEvent
from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.db.patients import lock_patients
from service.ingest.merges import merge_patients

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PRIOR, SURVIVOR = "P-OLD", "P-NEW"


def _event(pid: str) -> PatientEvent:
    return PatientEvent(pid, "HOSP", "MR", "4W/401/A", "GH", "MED")


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url)
    upgrade(engine)
    with Session(engine) as session, session.begin():
        lock_patients(session, {PRIOR: _event(PRIOR), SURVIVOR: _event(SURVIVOR)}, NOW)
    yield engine
    engine.dispose()


def _merge(session: Session) -> list[str]:
    survivor = lock_patients(session, {SURVIVOR: _event(SURVIVOR)}, NOW)[SURVIVOR]
    return merge_patients(session, survivor, [PRIOR], "MERGE-1", NOW)


def _patients(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.execute(text("SELECT patient_id FROM patients ORDER BY 1")).scalars())


def _waiting_on_advisory_lock(engine: Engine, pid: int) -> bool:
    with Session(engine) as session:
        waiting = session.execute(
            text(
                "SELECT count(*) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = :pid AND NOT granted"
            ),
            {"pid": pid},
        ).scalar_one()
    return bool(waiting)


def test_a_merge_cannot_take_a_patient_a_batch_holds(engine: Engine) -> None:
    with Session(engine) as batch, batch.begin():
        lock_patients(batch, {PRIOR: _event(PRIOR)}, NOW)  # the pipeline's lock on the prior
        with Session(engine) as merge, merge.begin():
            merge.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(OperationalError) as raised:
                _merge(merge)
        assert type(raised.value.orig).__name__ == "LockNotAvailable"
    assert _patients(engine) == [SURVIVOR, PRIOR]  # nothing merged while the batch held it


def test_a_batch_cannot_take_a_patient_a_merge_holds(engine: Engine) -> None:
    with Session(engine) as merge, merge.begin():
        assert _merge(merge) == [PRIOR]
        with Session(engine) as batch, batch.begin():
            batch.execute(text("SET LOCAL lock_timeout = '200ms'"))
            with pytest.raises(OperationalError) as raised:
                lock_patients(batch, {PRIOR: _event(PRIOR)}, NOW)
        assert type(raised.value.orig).__name__ == "LockNotAvailable"


def test_a_merge_waits_for_the_batch_and_then_runs(engine: Engine) -> None:
    merged: list[str] = []
    errors: list[BaseException] = []
    merge_pid: list[int] = []
    started = threading.Event()

    def run_merge() -> None:
        try:
            with Session(engine) as merge, merge.begin():
                merge_pid.append(merge.execute(text("SELECT pg_backend_pid()")).scalar_one())
                started.set()
                merged.extend(_merge(merge))
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)
            started.set()

    with Session(engine) as batch, batch.begin():
        lock_patients(batch, {PRIOR: _event(PRIOR)}, NOW)
        thread = threading.Thread(target=run_merge, daemon=True)
        thread.start()
        assert started.wait(10) and not errors
        # The event: the merge's backend is queued on the advisory lock the batch holds.
        deadline = time.monotonic() + 10
        while not _waiting_on_advisory_lock(engine, merge_pid[0]):
            assert thread.is_alive() and time.monotonic() < deadline, "merge never waited"
            time.sleep(0.01)  # polling pg_locks, not a window the test depends on
        assert not merged and _patients(engine) == [SURVIVOR, PRIOR]
    thread.join(10)
    assert not errors and not thread.is_alive()
    assert merged == [PRIOR]
    assert _patients(engine) == [SURVIVOR]
