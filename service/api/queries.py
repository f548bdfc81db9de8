"""Read models of the API and the pages, and the two writes they make (resolve, reprocess).

Synchronous SQLAlchemy; the routes run these in worker threads. Patients are addressed by
``ref``, the row id of the ``patients`` table: opaque, so no MRN ever appears in a URL.
Acknowledging is ``service.notify.acknowledge``'s (the paging side) and is only called from here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from alerts.catalog import CatalogError
from alerts.exposures import derive_exposures
from alerts.identity import patient_key, split_patient_key
from alerts.model import Exposure
from alerts.monitoring import at_risk_episodes, monitoring_plan
from service.db.models import (
    Alert,
    DeadLetter,
    DeliveryAttempt,
    LabResultRow,
    MedicationOrderRow,
    NotificationRow,
    OutboxRow,
    Patient,
)
from service.db.prevention import AdvisoryRow, ReminderRow
from service.ingest import store
from service.ingest.pipeline import Incoming, Outcome
from service.runtime import metrics

if TYPE_CHECKING:
    from service.api.app import ApiContext

log = logging.getLogger(__name__)

TIMELINE_ANALYTES = ("phosphate", "calcium", "corrected_calcium", "ionized_calcium", "albumin")
CALCIUM_KINDS = ("calcium", "corrected_calcium", "ionized_calcium")
# CLINICAL.md: "baseline, 1 week and 3 weeks after starting iron".
MONITORING_CHECKPOINTS = (("1 week", 7), ("3 weeks", 21))
BASELINE_DAYS = 14  # a phosphate/calcium this long before the first dose counts as baseline


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def drug_name(ctx: ApiContext, key: str) -> str:
    drug = ctx.clinical.drugs.get(key) if key else None
    return drug.name if drug is not None else key


# -- alerts -------------------------------------------------------------------------------


def alert_doc(ctx: ApiContext, row: Alert, patient_ref: int | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "dedup_key": row.dedup_key,
        "rule": row.rule,
        "status": row.status,
        "severity": row.severity,
        "patient": {"ref": patient_ref, **_identity(row.patient_id), "location": row.location},
        "analyte": row.analyte,
        "value": row.value,
        "comparator": row.comparator,
        "unit": row.unit,
        "value_canonical": row.value_canonical,
        "reference_range": row.reference_range,
        "observed_at": _iso(row.observed_at),
        "iron": {
            "drug": drug_name(ctx, row.iron_drug),
            "dose_at": _iso(row.iron_dose_at),
            "days_since": row.days_since_iron,
        },
        "antiresorptive": {
            "drug": drug_name(ctx, row.antiresorptive_drug),
            "dose_at": _iso(row.antiresorptive_dose_at),
        },
        "double_trouble": row.double_trouble,
        "backfilled": row.backfilled,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "resolved_at": _iso(row.resolved_at),
        "ack": (
            {
                "at": _iso(row.acked_at),
                "by": row.acked_by,
                "action": row.ack_action,
                "note": row.ack_note,
            }
            if row.acked_at is not None
            else None
        ),
    }


def _refs(session: Session, patient_ids: set[str]) -> dict[str, int]:
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


def _identity(key: str) -> dict[str, str]:
    """A patient key as the API shows it: PID-3.1 and the PID-3.4 that assigned it."""
    identifier, authority = split_patient_key(key)
    return {"id": identifier, "authority": authority}


def patient_ref_for(ctx: ApiContext, patient_id: str, authority: str = "") -> int | None:
    """The ref of the patient with this identifier and assigning authority. Without an
    authority, the one patient whose identifier it is, if only one authority has it (an
    identifier that two authorities assigned names nobody until the authority is given)."""
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


def list_alerts(
    ctx: ApiContext,
    *,
    status: str | None = None,
    severity: str | None = None,
    patient_ref: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first. Returns (page, total matching)."""
    with Session(ctx.engine) as session:
        query = select(Alert)
        if status:
            query = query.where(col(Alert.status) == status)
        if severity:
            query = query.where(col(Alert.severity) == severity)
        if patient_ref is not None:
            patient = patient_by_ref(session, patient_ref)
            if patient is None:
                return [], 0
            query = query.where(col(Alert.patient_id) == patient.patient_id)
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = (
            session.execute(
                query.order_by(col(Alert.updated_at).desc(), col(Alert.id).desc())
                .limit(limit)
                .offset(offset)
            )
            .scalars()
            .all()
        )
        refs = _refs(session, {r.patient_id for r in rows})
        return [alert_doc(ctx, r, refs.get(r.patient_id)) for r in rows], int(total)


def alert_detail(ctx: ApiContext, alert_id: int) -> dict[str, Any] | None:
    """The alert, its notifications, and each notification's deliveries and attempts."""
    with Session(ctx.engine) as session:
        row = session.get(Alert, alert_id)
        if row is None:
            return None
        refs = _refs(session, {row.patient_id})
        doc = alert_doc(ctx, row, refs.get(row.patient_id))
        notifications = (
            session.execute(
                select(NotificationRow)
                .where(
                    or_(
                        col(NotificationRow.alert_id) == alert_id,
                        col(NotificationRow.dedup_key) == row.dedup_key,
                    )
                )
                .order_by(col(NotificationRow.id))
            )
            .scalars()
            .all()
        )
        ids = [n.notification_id for n in notifications]
        outbox = (
            session.execute(select(OutboxRow).where(col(OutboxRow.notification_id).in_(ids)))
            .scalars()
            .all()
        )
        attempts = (
            session.execute(
                select(DeliveryAttempt)
                .where(col(DeliveryAttempt.notification_id).in_(ids))
                .order_by(col(DeliveryAttempt.id))
            )
            .scalars()
            .all()
        )
    by_outbox: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in attempts:
        by_outbox[a.outbox_id].append(
            {
                "attempted_at": _iso(a.attempted_at),
                "outcome": a.outcome,
                "detail": a.detail,
                "latency_ms": round(a.latency_ms, 1),
            }
        )
    deliveries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in outbox:
        deliveries[o.notification_id].append(
            {
                "channel": o.channel,
                "recipient": o.recipient,
                "status": o.status,
                "attempts": o.attempts,
                "last_error": o.last_error,
                "sent_at": _iso(o.sent_at),
                "history": by_outbox.get(o.id or 0, []),
            }
        )
    doc["notifications"] = [
        {
            "notification_id": n.notification_id,
            "event": n.event,
            "severity": n.severity,
            "created_at": _iso(n.created_at),
            "deliveries": deliveries.get(n.notification_id, []),
        }
        for n in notifications
    ]
    return doc


def resolve_alert(ctx: ApiContext, alert_id: int, *, who: str, now: datetime) -> dict[str, Any]:
    """Close an alert by hand (for example, a false positive after review).

    Raises LookupError when there is no such alert. Resolving a resolved alert changes
    nothing. No page goes out: the people who act on it are the ones resolving it.
    """
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        row = session.execute(
            select(Alert).where(col(Alert.id) == alert_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise LookupError(alert_id)
        changed = row.status != "resolved"
        if changed:
            row.status, row.resolved_at, row.updated_at = "resolved", now, now
        refs = _refs(session, {row.patient_id})
        doc = alert_doc(ctx, row, refs.get(row.patient_id))
    if changed:
        log.info("alert resolved by hand", extra={"alert_id": alert_id, "by": who[:128]})
    doc["changed"] = changed
    return doc


# -- dead letters ---------------------------------------------------------------------------


def dead_letter_doc(row: DeadLetter, *, include_raw: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "error_class": row.error_class,
        "reason": row.reason,
        "source": row.source,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "control_id": row.control_id,
        "size": len(row.raw),
        "created_at": _iso(row.created_at),
        "reprocessed_at": _iso(row.reprocessed_at),
    }
    if include_raw:
        # HL7 v2 is 8-bit text in the sender's charset; latin-1 never fails and keeps bytes.
        doc["raw"] = bytes(row.raw).decode("latin-1")
    return doc


def list_dead_letters(
    ctx: ApiContext,
    *,
    status: str | None = None,
    error_class: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    with Session(ctx.engine) as session:
        query = select(DeadLetter)
        if status:
            query = query.where(col(DeadLetter.status) == status)
        if error_class:
            query = query.where(col(DeadLetter.error_class) == error_class)
        total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        rows = (
            session.execute(query.order_by(col(DeadLetter.id).desc()).limit(limit).offset(offset))
            .scalars()
            .all()
        )
        return [dead_letter_doc(r) for r in rows], int(total)


def dead_letter_detail(ctx: ApiContext, dl_id: int, *, include_raw: bool) -> dict[str, Any] | None:
    with Session(ctx.engine) as session:
        row = session.get(DeadLetter, dl_id)
        return dead_letter_doc(row, include_raw=include_raw) if row is not None else None


@dataclass(frozen=True)
class Reprocessed:
    id: int
    outcome: str
    reason: str
    notifications: int
    status: str


def reprocess_dead_letter(ctx: ApiContext, dl_id: int, now: datetime) -> Reprocessed:
    """Run a dead letter's message through the pipeline again (after a fix of config or code).

    Raises LookupError (no such row), RuntimeError (no pipeline in this process) and
    ``DatabaseUnavailable`` from the pipeline. The row becomes ``reprocessed`` when the message
    was stored, ignored or found to be a duplicate; when it fails again it stays ``new`` (the
    pipeline files the new failure under a ``reprocess:`` location of its own).
    """
    if ctx.pipeline is None:
        raise RuntimeError("no pipeline in this process")
    with Session(ctx.engine) as session:
        row = session.get(DeadLetter, dl_id)
        if row is None:
            raise LookupError(dl_id)
        raw = bytes(row.raw)
    result = ctx.pipeline.process(Incoming(raw=raw, source="reprocess"))
    message_type = metrics.normalise_message_type(result.message_type or "unparsed")
    metrics.messages_consumed.labels("reprocess", message_type, result.outcome.value).inc()
    for n in result.notifications:
        metrics.alerts_total.labels(n.rule, n.severity, n.event).inc()
    status = "new"
    if result.outcome is not Outcome.DEAD_LETTER:
        status = "reprocessed"
        with Session(ctx.engine) as session, session.begin():
            stored = session.get(DeadLetter, dl_id)
            if stored is not None:
                stored.status, stored.reprocessed_at = status, now
    else:
        metrics.dead_letters.labels(result.error_class or "processing").inc()
    log.info(
        "dead letter reprocessed",
        extra={
            "dead_letter_id": dl_id,
            "outcome": result.outcome.value,
            "control_id": result.control_id,
        },
    )
    return Reprocessed(
        dl_id, result.outcome.value, result.reason, len(result.notifications), status
    )


# -- exposures, risk, timeline ------------------------------------------------------------------


def _exposures(ctx: ApiContext, orders: list[MedicationOrderRow], now: datetime) -> list[Exposure]:
    return derive_exposures(
        [store.stored_order(o) for o in orders], ctx.clinical.drugs, ctx.clinical.rules, now
    )


def _orders_by_patient(session: Session, patient_ids: list[str]) -> dict[str, list[Any]]:
    by_patient: dict[str, list[MedicationOrderRow]] = defaultdict(list)
    for chunk_start in range(0, len(patient_ids), 500):
        chunk = patient_ids[chunk_start : chunk_start + 500]
        for o in session.execute(
            select(MedicationOrderRow).where(col(MedicationOrderRow.patient_id).in_(chunk))
        ).scalars():
            by_patient[o.patient_id].append(o)
    return by_patient


def current_iron_episode(
    exposures: list[Exposure], now: datetime
) -> tuple[datetime, datetime, Exposure] | None:
    """(episode start, episode end, latest dose) of the iron episode open at ``now``."""
    irons = sorted((e for e in exposures if e.drug_class == "iv_iron"), key=lambda e: e.start)
    episode: list[Exposure] = []
    end: datetime | None = None
    for e in irons:
        if e.start > now:
            break
        if end is not None and e.start <= end:
            episode.append(e)
            end = max(end, e.end)
        else:
            episode, end = [e], e.end
    if not episode or end is None or end < now:
        return None
    return episode[0].start, end, episode[-1]


def antiresorptive_in_effect(
    exposures: list[Exposure], since: datetime, now: datetime
) -> Exposure | None:
    """An antiresorptive whose effect interval overlaps [since, now] (CLINICAL.md windows)."""
    for e in sorted(exposures, key=lambda e: e.start, reverse=True):
        if e.drug_class == "antiresorptive" and e.start <= now and e.end >= since:
            return e
    return None


@dataclass
class DueLab:
    label: str
    due_at: datetime
    state: str  # done | due | overdue | upcoming | missing (baseline only)


@dataclass
class AtRisk:
    ref: int
    patient_id: str
    location: str
    iron: str
    iron_dose_at: datetime
    episode_start: datetime
    window_end: datetime
    days_since_iron: int
    antiresorptive: str
    antiresorptive_dose_at: datetime
    monitoring: list[DueLab] = field(default_factory=list)
    latest: dict[str, tuple[float | None, str, datetime]] = field(default_factory=dict)
    episode: dict[str, Any] | None = None  # the episode summary (``episode_summaries``)

    @property
    def next_due(self) -> DueLab | None:
        for lab in self.monitoring:
            if lab.state in ("overdue", "due"):
                return lab
        for lab in self.monitoring:
            if lab.state == "upcoming":
                return lab
        return None


def monitoring_schedule(
    episode_start: datetime, draws: dict[str, list[datetime]], now: datetime
) -> list[DueLab]:
    """Baseline, 1 week and 3 weeks after the first dose; done when both minerals were drawn.

    ``draws`` maps "phosphate" and "calcium" (any calcium kind) to observation times. A
    checkpoint counts as done by a pair drawn from a day before it on; it is due from a day
    before, overdue two days after.
    """

    def both_between(start: datetime, end: datetime) -> bool:
        return all(
            any(start <= t <= end for t in draws.get(k, [])) for k in ("phosphate", "calcium")
        )

    labs = [
        DueLab(
            "baseline",
            episode_start,
            "done"
            if both_between(episode_start - timedelta(days=BASELINE_DAYS), episode_start)
            else "missing",
        )
    ]
    for label, days in MONITORING_CHECKPOINTS:
        due_at = episode_start + timedelta(days=days)
        if both_between(due_at - timedelta(days=1), now):
            state = "done"
        elif now > due_at + timedelta(days=2):
            state = "overdue"
        elif now >= due_at - timedelta(days=1):
            state = "due"
        else:
            state = "upcoming"
        labs.append(DueLab(label, due_at, state))
    return labs


def patients_at_risk(ctx: ApiContext, now: datetime) -> list[AtRisk]:
    """Patients whose iron risk window is open while an antiresorptive is in effect."""
    with Session(ctx.engine) as session:
        patients = (
            session.execute(
                select(Patient).where(col(Patient.has_iron), col(Patient.has_antiresorptive))
            )
            .scalars()
            .all()
        )
        orders = _orders_by_patient(session, [p.patient_id for p in patients])
        risky: list[AtRisk] = []
        for p in patients:
            exposures = _exposures(ctx, orders.get(p.patient_id, []), now)
            episode = current_iron_episode(exposures, now)
            if episode is None:
                continue
            start, end, dose = episode
            anti = antiresorptive_in_effect(exposures, dose.start, now)
            if anti is None:
                continue
            summaries = [e for e in episode_summaries(ctx, session, p, now) if e["open"]]
            risky.append(
                AtRisk(
                    episode=summaries[-1] if summaries else None,
                    ref=p.id or 0,
                    patient_id=p.patient_id,
                    location=p.location,
                    iron=drug_name(ctx, dose.drug),
                    iron_dose_at=dose.start,
                    episode_start=start,
                    window_end=end,
                    days_since_iron=(now - dose.start).days,
                    antiresorptive=drug_name(ctx, anti.drug),
                    antiresorptive_dose_at=anti.start,
                )
            )
        ids = [r.patient_id for r in risky]
        results = (
            session.execute(
                select(LabResultRow)
                .where(
                    col(LabResultRow.patient_id).in_(ids),
                    col(LabResultRow.analyte).in_(("phosphate", *CALCIUM_KINDS)),
                    col(LabResultRow.observed_at) >= now - timedelta(days=90),
                )
                .order_by(col(LabResultRow.observed_at))
            )
            .scalars()
            .all()
            if ids
            else []
        )
    by_patient: dict[str, list[LabResultRow]] = defaultdict(list)
    for r in results:
        by_patient[r.patient_id].append(r)
    for risk in risky:
        draws: dict[str, list[datetime]] = defaultdict(list)
        for r in by_patient.get(risk.patient_id, []):
            kind = "phosphate" if r.analyte == "phosphate" else "calcium"
            draws[kind].append(r.observed_at)
            risk.latest[r.analyte] = (r.value, r.unit, r.observed_at)
        risk.monitoring = monitoring_schedule(risk.episode_start, draws, now)
    risky.sort(key=lambda r: (r.next_due is None, r.window_end))
    return risky


def _point_state(point: Any, reminder: ReminderRow | None, now: datetime) -> str:
    """done | late draw | reminded | missed | due | upcoming."""
    if point.satisfied:
        return "done"
    if point.followed_up:
        return "late draw"
    if reminder is not None:
        return "reminded"
    if now > point.window[1]:
        return "missed"  # superseded by a later missed point: only that one was reminded
    return "due" if now >= point.window[0] else "upcoming"


def _result_brief(result: Any) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"value": result.value, "unit": result.unit, "observed_at": _iso(result.observed_at)}


def episode_summaries(
    ctx: ApiContext, session: Session, patient: Patient, now: datetime
) -> list[dict[str, Any]]:
    """Each at-risk iron episode of the patient (issue #4): doses, the monitoring plan with
    each point's state and results, the advisory, reminders, alerts and acks. Oldest first."""
    clinical = ctx.clinical
    if not (patient.has_iron and patient.has_antiresorptive):
        return []
    history = store.load_history(session, patient, now, clinical.history_days)
    episodes = at_risk_episodes(history, clinical.drugs, clinical.rules, now)
    if not episodes:
        return []
    plan = monitoring_plan(history, clinical.drugs, clinical.rules, clinical.monitoring, now)
    pid = patient.patient_id
    advisories = session.execute(select(AdvisoryRow).where(col(AdvisoryRow.patient_id) == pid))
    reminders = session.execute(select(ReminderRow).where(col(ReminderRow.patient_id) == pid))
    alerts = session.execute(select(Alert).where(col(Alert.patient_id) == pid))

    def second(moment: datetime) -> datetime:
        return moment.replace(microsecond=0)

    advisory_by = {second(a.episode_start): a for a in advisories.scalars()}
    reminder_by = {(second(r.episode_start), r.label): r for r in reminders.scalars()}
    alerts_by: dict[datetime, list[Alert]] = defaultdict(list)
    for a in alerts.scalars():
        alerts_by[second(a.episode_start)].append(a)
    out = []
    for episode in episodes:
        start = second(episode.start)
        advisory = advisory_by.get(start)
        points = []
        for point in (p for p in plan if second(p.episode_start) == start):
            reminder = reminder_by.get((start, point.label))
            points.append(
                {
                    "label": point.label,
                    "due_at": _iso(point.due_at),
                    "window": [_iso(point.window[0]), _iso(point.window[1])],
                    "state": _point_state(point, reminder, now),
                    "phosphate": _result_brief(point.phosphate),
                    "calcium": _result_brief(point.calcium),
                    "reminded_at": _iso(reminder.sent_at) if reminder else None,
                    "cleared_at": _iso(reminder.cleared_at) if reminder else None,
                }
            )
        out.append(
            {
                "start": _iso(episode.start),
                "end": _iso(episode.end),
                "open": episode.start <= now <= episode.end,
                "doses": [
                    {"drug": drug_name(ctx, d.drug), "dose_at": _iso(d.start)}
                    for d in episode.doses
                ],
                "antiresorptives": [
                    {"drug": drug_name(ctx, a.drug), "start": _iso(a.start), "end": _iso(a.end)}
                    for a in episode.antiresorptives
                ],
                "advisory": (
                    {"status": advisory.status, "at": _iso(advisory.created_at)}
                    if advisory is not None
                    else None
                ),
                "plan": points,
                "alerts": [
                    {
                        "id": a.id,
                        "rule": a.rule,
                        "analyte": a.analyte,
                        "severity": a.severity,
                        "status": a.status,
                        "acked_by": a.acked_by if a.acked_at is not None else None,
                    }
                    for a in sorted(alerts_by.get(start, []), key=lambda a: a.created_at)
                ],
            }
        )
    return out


_gauge_lock = threading.Lock()
_gauge_refreshed = {"at": -1e18}


def refresh_exposure_gauges(ctx: ApiContext, *, max_age_s: float = 0.0) -> None:
    """Set the active-exposure and at-risk gauges from the database (at most every max_age_s)."""
    with _gauge_lock:
        if time.monotonic() - _gauge_refreshed["at"] < max_age_s:
            return
        now = ctx.clock.now()
        counts = dict.fromkeys(metrics.EXPOSURE_CLASSES, 0)
        try:
            with Session(ctx.engine) as session:
                ids = list(
                    session.execute(
                        select(col(Patient.patient_id)).where(
                            or_(col(Patient.has_iron), col(Patient.has_antiresorptive))
                        )
                    ).scalars()
                )
                orders = _orders_by_patient(session, ids)
            for patient_orders in orders.values():
                for e in _exposures(ctx, patient_orders, now):
                    if e.drug_class in counts and e.start <= now <= e.end:
                        counts[e.drug_class] += 1
            at_risk = len(patients_at_risk(ctx, now))
        except Exception as exc:  # a scrape must never fail because of this
            log.warning("exposure gauges not refreshed", extra={"error": type(exc).__name__})
            metrics.job_run("exposure_refresh", ok=False)
            return
        for drug_class, count in counts.items():
            metrics.active_exposures.labels(drug_class).set(count)
        metrics.patients_at_risk.set(at_risk)
        metrics.job_run("exposure_refresh", ok=True)
        _gauge_refreshed["at"] = time.monotonic()


@dataclass
class TimelinePoint:
    analyte: str
    observed_at: datetime
    value: float | None
    comparator: str
    unit: str
    canonical: float | None
    status: str
    reference_range: str


@dataclass
class Timeline:
    ref: int
    patient_id: str
    location: str
    results: list[TimelinePoint]
    orders: list[dict[str, Any]]
    exposures: list[Exposure]
    alerts: list[dict[str, Any]]
    now: datetime
    episodes: list[dict[str, Any]] = field(default_factory=list)


def patient_timeline(ctx: ApiContext, ref: int, now: datetime) -> Timeline | None:
    labs = ctx.clinical.labs
    with Session(ctx.engine) as session:
        patient = patient_by_ref(session, ref)
        if patient is None:
            return None
        results = (
            session.execute(
                select(LabResultRow)
                .where(
                    col(LabResultRow.patient_id) == patient.patient_id,
                    col(LabResultRow.analyte).in_(TIMELINE_ANALYTES),
                )
                .order_by(col(LabResultRow.observed_at))
            )
            .scalars()
            .all()
        )
        orders = (
            session.execute(
                select(MedicationOrderRow)
                .where(col(MedicationOrderRow.patient_id) == patient.patient_id)
                .order_by(col(MedicationOrderRow.dose_at))
            )
            .scalars()
            .all()
        )
        alerts = (
            session.execute(
                select(Alert)
                .where(col(Alert.patient_id) == patient.patient_id)
                .order_by(col(Alert.observed_at))
            )
            .scalars()
            .all()
        )
        points = []
        for r in results:
            canonical = None
            if r.value is not None:
                try:
                    canonical = labs.to_canonical(r.analyte, r.value, r.unit)
                except (CatalogError, KeyError):
                    canonical = None
            points.append(
                TimelinePoint(
                    r.analyte,
                    r.observed_at,
                    r.value,
                    r.comparator,
                    r.unit,
                    canonical,
                    r.status,
                    r.reference_range,
                )
            )
        return Timeline(
            ref=ref,
            patient_id=patient.patient_id,
            location=patient.location,
            results=points,
            orders=[
                {
                    "drug": drug_name(ctx, o.drug),
                    "drug_class": o.drug_class,
                    "order_control": o.order_control,
                    "route": o.route,
                    "dose_at": _iso(o.dose_at),
                    "end_at": _iso(o.end_at),
                    "administered": o.administered,
                }
                for o in orders
            ],
            exposures=_exposures(ctx, list(orders), now),
            alerts=[alert_doc(ctx, a, ref) for a in alerts],
            now=now,
            episodes=episode_summaries(ctx, session, patient, now),
        )


def timeline_doc(ctx: ApiContext, timeline: Timeline) -> dict[str, Any]:
    return {
        "patient": {
            "ref": timeline.ref,
            **_identity(timeline.patient_id),
            "location": timeline.location,
        },
        "results": [
            {
                "analyte": p.analyte,
                "observed_at": _iso(p.observed_at),
                "value": p.value,
                "comparator": p.comparator,
                "unit": p.unit,
                "value_canonical": p.canonical,
                "status": p.status,
                "reference_range": p.reference_range,
            }
            for p in timeline.results
        ],
        "orders": timeline.orders,
        "exposures": [
            {
                "drug": drug_name(ctx, e.drug),
                "drug_class": e.drug_class,
                "start": _iso(e.start),
                "end": _iso(e.end),
            }
            for e in timeline.exposures
        ],
        "alerts": timeline.alerts,
        "episodes": timeline.episodes,
        "thresholds": {
            analyte: t.model_dump() for analyte, t in ctx.settings.clinical.thresholds.items()
        },
    }
