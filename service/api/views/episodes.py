"""Each at-risk iron episode of a patient with its monitoring plan, as the pages show it.

The episodes and the plan are the pure core's (``alerts.monitoring.at_risk_episodes`` and
``monitoring_plan`` with the configured ``Clinical.monitoring``), the same calls the reminder
sweep makes, so the worklist, the timeline and the reminders agree on every check.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.model import PatientHistory, StoredResult
from alerts.monitoring import AtRiskEpisode, DuePoint, at_risk_episodes, monitoring_plan
from service.api.context import ApiContext
from service.api.views.common import drug_name, iso
from service.db.models import Alert, Patient
from service.db.patient_history import load_history
from service.db.prevention import AdvisoryRow, ReminderRow


@dataclass(frozen=True)
class PatientPlan:
    """A patient's history, at-risk episodes (oldest first) and monitoring plan at ``now``."""

    patient: Patient
    history: PatientHistory
    episodes: list[AtRiskEpisode]
    plan: list[DuePoint]

    def points_of(self, episode: AtRiskEpisode) -> list[DuePoint]:
        """The plan's points of one episode, in schedule order."""
        start = _second(episode.start)
        return [p for p in self.plan if _second(p.episode_start) == start]


def _second(moment: datetime) -> datetime:
    # Stored episode starts lose sub-second precision on some databases: match by second.
    return moment.replace(microsecond=0)


def patient_plan(
    ctx: ApiContext, session: Session, patient: Patient, now: datetime
) -> PatientPlan | None:
    """The patient's plan, or None when no iron episode of theirs was ever at risk. Blocks
    on the database."""
    clinical = ctx.clinical
    if not (patient.has_iron and patient.has_antiresorptive):
        return None
    history = load_history(session, patient, now, clinical.history_days)
    episodes = at_risk_episodes(history, clinical.drugs, clinical.rules, now)
    if not episodes:
        return None
    plan = monitoring_plan(history, clinical.drugs, clinical.rules, clinical.monitoring, now)
    return PatientPlan(patient=patient, history=history, episodes=episodes, plan=plan)


def _point_state(point: DuePoint, reminder: ReminderRow | None, now: datetime) -> str:
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


def _result_brief(result: StoredResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"value": result.value, "unit": result.unit, "observed_at": iso(result.observed_at)}


def episode_summaries(
    ctx: ApiContext, session: Session, plan: PatientPlan | None, now: datetime
) -> list[dict[str, Any]]:
    """Each at-risk iron episode of the patient: doses, the monitoring plan with each point's
    state and results, the advisory, reminders, alerts and acks. Oldest first; empty without
    a plan. Blocks on the database."""
    if plan is None:
        return []
    pid = plan.patient.patient_id
    advisories = session.execute(select(AdvisoryRow).where(col(AdvisoryRow.patient_id) == pid))
    reminders = session.execute(select(ReminderRow).where(col(ReminderRow.patient_id) == pid))
    alerts = session.execute(select(Alert).where(col(Alert.patient_id) == pid))
    advisory_by = {_second(a.episode_start): a for a in advisories.scalars()}
    reminder_by = {(_second(r.episode_start), r.label): r for r in reminders.scalars()}
    alerts_by: dict[datetime, list[Alert]] = defaultdict(list)
    for a in alerts.scalars():
        alerts_by[_second(a.episode_start)].append(a)
    out = []
    for episode in plan.episodes:
        start = _second(episode.start)
        advisory = advisory_by.get(start)
        points = []
        for point in plan.points_of(episode):
            reminder = reminder_by.get((start, point.label))
            points.append(
                {
                    "label": point.label,
                    "due_at": iso(point.due_at),
                    "window": [iso(point.window[0]), iso(point.window[1])],
                    "state": _point_state(point, reminder, now),
                    "phosphate": _result_brief(point.phosphate),
                    "calcium": _result_brief(point.calcium),
                    "reminded_at": iso(reminder.sent_at) if reminder else None,
                    "cleared_at": iso(reminder.cleared_at) if reminder else None,
                }
            )
        out.append(
            {
                "start": iso(episode.start),
                "end": iso(episode.end),
                "open": episode.start <= now <= episode.end,
                "doses": [
                    {"drug": drug_name(ctx, d.drug), "dose_at": iso(d.start)} for d in episode.doses
                ],
                "antiresorptives": [
                    {"drug": drug_name(ctx, a.drug), "start": iso(a.start), "end": iso(a.end)}
                    for a in episode.antiresorptives
                ],
                "advisory": (
                    {"status": advisory.status, "at": iso(advisory.created_at)}
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
