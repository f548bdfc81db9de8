"""The worklist: open and late-found alerts, and the patients at risk now with their checks.

"At risk now": an at-risk iron episode (``alerts.monitoring.at_risk_episodes``) is open at
``now`` and its interaction has begun (an antiresorptive effect interval overlapped one of its
doses by then). Each patient's checks are the points of the configured monitoring plan
(``Clinical.monitoring``) that the reminder sweep works from, so a check the worklist shows as
done is one the sweep does not remind of.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.identity import split_patient_key
from alerts.model import ANALYTE_PHOSPHATE
from alerts.monitoring import CALCIUM_ANALYTES, AtRiskEpisode, DuePoint
from service.api.context import ApiContext
from service.api.views.common import drug_name
from service.api.views.episodes import PatientPlan, episode_summaries, patient_plan
from service.api.views.patients import exposures_of, orders_by_patient
from service.api.views.worklist_order import ordered_alerts
from service.db.models import Patient

# How far back the worklist looks for the latest phosphate and calcium it shows.
LATEST_RESULTS_DAYS = 90


@dataclass
class DueLab:
    label: str  # the plan's label: "baseline", "day 7", "day 21", "month 1", ...
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


def check_state(point: DuePoint, now: datetime) -> str:
    """The worklist's word for one check of the plan.

    The baseline is ``done`` when both minerals were drawn in its window before the dose and
    ``missing`` otherwise. A later check is ``done`` when drawn in its window or after it (a
    late draw answers its reminder too), ``overdue`` once its window has closed, ``due``
    inside the window and ``upcoming`` before it.
    """
    if point.label == "baseline":
        return "done" if point.satisfied else "missing"
    if point.satisfied or point.followed_up:
        return "done"
    if now > point.window[1]:
        return "overdue"
    return "due" if now >= point.window[0] else "upcoming"


def _open_episode(plan: PatientPlan, now: datetime) -> AtRiskEpisode | None:
    for episode in reversed(plan.episodes):
        if episode.start <= now <= episode.end and episode.trigger_at <= now:
            return episode
    return None


def _at_risk(ctx: ApiContext, plan: PatientPlan, episode: AtRiskEpisode, now: datetime) -> AtRisk:
    given = [d for d in episode.doses if d.start <= now]
    dose = max(given, key=lambda d: d.start)
    begun = [a for a in episode.antiresorptives if a.start <= now]
    anti = max(begun, key=lambda a: a.start, default=episode.trigger_antiresorptive)
    since = now - timedelta(days=LATEST_RESULTS_DAYS)
    latest: dict[str, tuple[float | None, str, datetime]] = {}
    for r in sorted(plan.history.results, key=lambda r: r.observed_at):
        if r.observed_at >= since and (
            r.analyte == ANALYTE_PHOSPHATE or r.analyte in CALCIUM_ANALYTES
        ):
            latest[r.analyte] = (r.value, r.unit, r.observed_at)
    patient = plan.patient
    return AtRisk(
        ref=patient.id or 0,
        patient_id=patient.patient_id,
        location=patient.location,
        iron=drug_name(ctx, dose.drug),
        iron_dose_at=dose.start,
        episode_start=episode.start,
        window_end=episode.end,
        days_since_iron=(now - dose.start).days,
        antiresorptive=drug_name(ctx, anti.drug),
        antiresorptive_dose_at=anti.start,
        monitoring=[
            DueLab(label=p.label, due_at=p.due_at, state=check_state(p, now))
            for p in plan.points_of(episode)
        ],
        latest=latest,
    )


def patients_at_risk(ctx: ApiContext, now: datetime) -> list[AtRisk]:
    """Patients with an at-risk iron episode open now, those with a check due first. Blocks
    on the database."""
    with Session(ctx.engine) as session:
        patients = (
            session.execute(
                select(Patient).where(col(Patient.has_iron), col(Patient.has_antiresorptive))
            )
            .scalars()
            .all()
        )
        # Cheap first pass over the orders alone: only a patient with an iron risk window
        # open now can be at risk now, and only theirs is worth loading the whole history.
        orders = orders_by_patient(session, [p.patient_id for p in patients])
        risky: list[AtRisk] = []
        for patient in patients:
            exposures = exposures_of(ctx, orders.get(patient.patient_id, []), now)
            if not any(e.drug_class == "iv_iron" and e.start <= now <= e.end for e in exposures):
                continue
            plan = patient_plan(ctx, session, patient, now)
            episode = _open_episode(plan, now) if plan is not None else None
            if plan is None or episode is None:
                continue
            risk = _at_risk(ctx, plan, episode, now)
            summaries = episode_summaries(ctx, session, plan, now)
            risk.episode = summaries[plan.episodes.index(episode)]
            risky.append(risk)
    risky.sort(key=lambda r: (r.next_due is None, r.window_end))
    return risky


def worklist_doc(ctx: ApiContext, now: datetime, *, limit: int) -> dict[str, Any]:
    """The worklist as JSON: open alerts, late-found (worklist) alerts and patients at risk,
    at most ``limit`` alerts of each status, each list in worklist order (most severe, then
    longest waiting: ``worklist_order``). Blocks on the database."""
    open_alerts = ordered_alerts(ctx, status="open", limit=limit)
    backlog = ordered_alerts(ctx, status="worklist", limit=limit)
    return {
        "open_alerts": open_alerts,
        "worklist_alerts": backlog,
        "at_risk": [_at_risk_doc(r) for r in patients_at_risk(ctx, now)],
    }


def _at_risk_doc(risk: AtRisk) -> dict[str, Any]:
    identifier, authority = split_patient_key(risk.patient_id)
    return {
        "ref": risk.ref,
        "patient_id": identifier,
        "authority": authority,
        "location": risk.location,
        "iron": {
            "drug": risk.iron,
            "dose_at": risk.iron_dose_at.isoformat(),
            "days_since": risk.days_since_iron,
        },
        "window_end": risk.window_end.isoformat(),
        "antiresorptive": {
            "drug": risk.antiresorptive,
            "dose_at": risk.antiresorptive_dose_at.isoformat(),
        },
        "monitoring": [
            {"label": m.label, "due_at": m.due_at.isoformat(), "state": m.state}
            for m in risk.monitoring
        ],
    }
