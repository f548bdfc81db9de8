"""Prevention, the service side: order-time advisories and monitoring reminders.

The decisions are the pure core's (``alerts.advisory.advisories``, ``alerts.monitoring``);
this module stores them and queues their notifications (``service.notify.content`` says
what they say) through the transactional outbox (``service.notify.outbox``).

- ``queue_advisories`` runs inside the pipeline transaction of the message that stored an
  iron or antiresorptive order (the patient is locked). One ``advisories`` row per at-risk
  iron episode; a new one queues ONE ``advisory`` notification (severity ``info``, never a
  page) to the pharmacy team - the routing fallback team, which configs/routing.toml makes
  the pharmacy on-call - on its non-paging ``notify`` channels, to the ordering provider
  when routing knows them (``provider_ids``), and to the audit channels (console,
  ``--pages-out``). A late advisory (the interaction began longer ago than
  ``advisory_late_days``) is stored with status ``worklist`` and sends nothing.
- ``run_reminders(engine, clinical, now, delivery=...)`` is the reminder sweep: a plain
  function of the database and ``now``, called by the APScheduler job
  (``service.notify.reminders``) with the wall clock and by ``replay --clock messages`` with
  the message clock. Per at-risk patient, in its own transaction holding the patient's lock
  (``service.db.patients.lock_patient_keys``, the one the pipeline and merges take):
  ``monitoring_plan`` + ``due_reminders``; each reminder id is inserted into ``reminders``
  (ON CONFLICT DO NOTHING) and only an inserted id queues its notification, in the same
  transaction - a restart or a second instance neither loses nor repeats a reminder.
  Reminders whose point has since been followed up get ``cleared_at``.

Reminders go to the patient's care team (the same routes as its alerts) on the team's
``notify`` channels and to the iron's ordering provider, plus the audit channels.

Identities survive merges: an advisory or reminder already stored for the same episode start
(and label) counts as sent even when it was keyed under a merged-away identifier.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from alerts.advisory import advisories
from alerts.model import PatientHistory
from alerts.monitoring import (
    DAYS_PER_MONTH,
    at_risk_episodes,
    cleared_reminders,
    due_reminders,
    monitoring_plan,
)
from alerts.notification import Notification
from service.db.dialect import Conflict, insert_on_conflict
from service.db.models import MedicationOrderRow, Patient
from service.db.patient_history import load_history
from service.db.patients import PatientRecord, lock_patient_keys
from service.db.prevention import AdvisoryRow, ReminderRow
from service.notify.content import advisory_notification, reminder_notification
from service.notify.delivery import Delivery
from service.notify.outbox import store_notification
from service.notify.routes import provider_id
from service.runtime.clinical import Clinical
from service.runtime.phi import patient_hash

log = logging.getLogger(__name__)


def _second(moment: datetime) -> datetime:
    """UTC to the second: how episode starts compare after a round trip through storage."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _insert_ignoring(session: Session, model: type[Any], row: dict[str, Any], key: str) -> bool:
    """INSERT ... ON CONFLICT (key) DO NOTHING; True when the row was inserted."""
    connection = session.connection()
    # RETURNING says whether the row went in on every backend (psycopg's rowcount is -1).
    statement = insert_on_conflict(
        model.__table__, connection.dialect.name, Conflict(key=(key,)), returning=(key,)
    ).values(**row)
    return connection.execute(statement).first() is not None


def _queue_notice(
    session: Session,
    notification: Notification,
    delivery: Delivery,
    team_id: str,
    provider: str,
    *,
    now: datetime,
    queued_at: datetime,
) -> Notification:
    """Store a notice (no alert) with its outbox rows; return it as queued, addressed by the
    paging (the team and the prescriber under routing, else the default channels ×
    recipients)."""
    addressed = delivery.paging.address_notice(notification, team_id, provider, now)
    store_notification(
        session,
        addressed.notification,
        addressed.deliveries,
        addressed.audit_channels,
        alert_id=None,
        team=team_id,
        now=now,
        queued_at=queued_at,
        deadline=addressed.deadline,
    )
    return addressed.notification


# -- order-time advisory ----------------------------------------------------------------------


def queue_advisories(
    session: Session,
    patient: PatientRecord,
    history: PatientHistory,
    clinical: Clinical,
    delivery: Delivery,
    now: datetime,
    queued_at: datetime,
) -> list[Notification]:
    """Store and queue the advisories of ``history`` not yet stored; return those queued.

    Runs inside the caller's transaction with ``patient`` locked. ``now`` is the clinical
    clock (the message time in a replay), ``queued_at`` the wall clock.
    """
    found = advisories(
        history,
        clinical.drugs,
        clinical.labs,
        clinical.rules,
        now,
        lookback_days=clinical.advisory_lookback_days,
        late_days=clinical.advisory_late_days,
        monitoring=clinical.monitoring,
    )
    if not found:
        return []
    stored = session.execute(
        select(col(AdvisoryRow.dedup_key), col(AdvisoryRow.episode_start)).where(
            col(AdvisoryRow.patient_id) == patient.patient_id
        )
    ).all()
    keys = {key for key, _ in stored}
    episodes = {_second(start) for _, start in stored}
    team = delivery.paging.pharmacy_team()
    queued: list[Notification] = []
    for advisory in found:
        if advisory.dedup_key in keys or _second(advisory.episode_start) in episodes:
            continue
        row = {
            "dedup_key": advisory.dedup_key,
            "patient_id": advisory.patient_id,
            "episode_start": advisory.episode_start,
            "iron_drug": advisory.iron.drug[:64],
            "antiresorptive_drug": advisory.antiresorptive.drug[:64],
            "ordering_provider": provider_id(advisory.ordering_provider)[:64],
            "status": "worklist" if advisory.late else "sent",
            "created_at": now,
        }
        if not _insert_ignoring(session, AdvisoryRow, row, "dedup_key") or advisory.late:
            continue
        notification = advisory_notification(advisory, clinical.drugs, patient.location, now)
        queued.append(
            _queue_notice(
                session,
                notification,
                delivery,
                team,
                advisory.ordering_provider,
                now=now,
                queued_at=queued_at,
            )
        )
    return queued


# -- monitoring reminders --------------------------------------------------------------------


@dataclass
class ReminderReport:
    patients: int = 0
    sent: list[tuple[str, str]] = field(default_factory=list)  # (reminder id, label)
    cleared: list[str] = field(default_factory=list)  # reminder ids


def horizon_days(clinical: Clinical) -> int:
    """How long after an iron dose its episode may still have a point to remind of."""
    monitoring = clinical.monitoring
    last = max((*monitoring.points_days, DAYS_PER_MONTH * monitoring.monthly_months, 0))
    return last + monitoring.grace_days + clinical.rules.iron_window_days + 1


def at_risk_patient_ids(session: Session, clinical: Clinical, now: datetime) -> list[str]:
    """Patients with iron and antiresorptive orders and an IV iron dose recent enough to
    still have a monitoring point (the sweep's bound)."""
    since = now - timedelta(days=horizon_days(clinical))
    recent = (
        select(col(MedicationOrderRow.patient_id))
        .where(
            col(MedicationOrderRow.drug_class) == "iv_iron",
            col(MedicationOrderRow.dose_at) >= since,
        )
        .distinct()
    )
    return sorted(
        session.execute(
            select(col(Patient.patient_id)).where(
                col(Patient.has_iron),
                col(Patient.has_antiresorptive),
                col(Patient.patient_id).in_(recent),
            )
        ).scalars()
    )


def run_reminders(
    engine: Engine,
    clinical: Clinical,
    now: datetime,
    *,
    delivery: Delivery,
    queued_at: datetime | None = None,
) -> ReminderReport:
    """Send every monitoring reminder due at ``now`` and clear answered ones (module doc).

    ``delivery``: the app's (``app.pipeline.delivery``, which carries routing and
    ``--pages-out``). Each patient in its own transaction, blocking while the pipeline or a
    merge holds the patient's lock. Raises SQLAlchemyError when the database fails (the
    caller retries at its next run; nothing half-done is committed).
    """
    report = ReminderReport()
    with Session(engine) as session:
        ids = at_risk_patient_ids(session, clinical, now)
    for patient_id in ids:
        try:
            _sweep_patient(
                engine, clinical, delivery, patient_id, now, queued_at or datetime.now(UTC), report
            )
        except IntegrityError:  # another instance queued the same reminder first
            log.info("reminder already queued", extra={"patient": patient_hash(patient_id)})
    report.patients = len(ids)
    return report


def _sweep_patient(
    engine: Engine,
    clinical: Clinical,
    delivery: Delivery,
    patient_id: str,
    now: datetime,
    queued_at: datetime,
    report: ReminderReport,
) -> None:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        lock_patient_keys(session, [patient_id])
        patient = session.execute(
            select(Patient).where(col(Patient.patient_id) == patient_id)
        ).scalar_one_or_none()
        if patient is None:  # merged away since the list was read
            return
        history = known_at(load_history(session, patient, now, clinical.history_days), now)
        plan = monitoring_plan(history, clinical.drugs, clinical.rules, clinical.monitoring, now)
        if not plan:
            return
        rows = {
            r.id: r
            for r in session.execute(
                select(ReminderRow).where(col(ReminderRow.patient_id) == patient_id)
            ).scalars()
        }
        sent = _already_sent(plan, rows.values())
        episodes = {
            _second(e.start): e
            for e in at_risk_episodes(history, clinical.drugs, clinical.rules, now)
        }
        team = delivery.paging.care_team(patient)
        for reminder in due_reminders(plan, now, sent):
            row = {
                "id": reminder.id,
                "patient_id": patient_id,
                "episode_start": reminder.episode_start,
                "label": reminder.label[:32],
                "sent_at": now,
                "cleared_at": None,
            }
            if not _insert_ignoring(session, ReminderRow, row, "id"):
                continue  # sent by another instance meanwhile
            notification = reminder_notification(
                reminder,
                episodes.get(_second(reminder.episode_start)),
                clinical.drugs,
                patient.location,
                now,
            )
            _queue_notice(
                session,
                notification,
                delivery,
                team,
                reminder.ordering_provider,
                now=now,
                queued_at=queued_at,
            )
            report.sent.append((reminder.id, reminder.label))
            log.info(
                "monitoring reminder queued",
                extra={"patient": patient_hash(patient_id), "label": reminder.label},
            )
        by_point = {(_second(r.episode_start), r.label): r for r in rows.values()}
        for key in cleared_reminders(plan, sent):
            point = next(p for p in plan if p.key == key)
            stored = rows.get(key) or by_point.get((_second(point.episode_start), point.label))
            if stored is not None and stored.cleared_at is None:
                stored.cleared_at = now
                session.add(stored)
                report.cleared.append(key)


def known_at(history: PatientHistory, now: datetime) -> PatientHistory:
    """The history as it had arrived by ``now``: orders sent (MSH-7) and results stored at or
    before it. Live, that is everything; a replay into a database that already holds the
    rest of the feed must not remind of what the feed had not yet said at ``now``."""
    return replace(
        history,
        orders=tuple(o for o in history.orders if o.message_time <= now),
        results=tuple(r for r in history.results if r.received_at <= now),
    )


def _already_sent(plan: Sequence[Any], rows: Iterable[ReminderRow]) -> set[str]:
    """Ids of the plan's points already reminded of: by id, or by (episode start, label) for
    rows keyed under a merged-away identifier."""
    rows = list(rows)
    sent = {r.id for r in rows}
    pairs = {(_second(r.episode_start), r.label) for r in rows}
    sent |= {p.key for p in plan if (_second(p.episode_start), p.label) in pairs}
    return sent
