"""Per-patient evaluation inside the pipeline transaction: history → rules → queued pages.

For each message of a batch that may matter to a patient exposed to both interacting drug
classes, the patient's stored history (up to that message) goes through the pure rules of
``alerts``; the resulting plans are stored and queued by ``service.notify``. Runs in the
caller's session with the patient locked; blocks on the database and never commits. Raises
whatever the database or the rules raise: the pipeline then retries the batch message by
message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.model import RULE_INTERACTION, AlertState, Severity
from alerts.notification import Notification
from alerts.planning import plan_notifications
from alerts.rules import evaluate_patient
from alerts.trends import RULE_TREND, plan_trend_notifications, trend_findings
from service.db.models import Alert
from service.db.patient_history import load_history
from service.db.patients import PatientRecord
from service.ingest.staging import Staged
from service.notify import prevention
from service.notify.alerting import Delivery, apply_plans
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock


@dataclass
class Evaluator:
    """``wall_clock`` stamps what is queued (the dispatcher schedules by it); the clinical
    ``now`` is each message's own."""

    clinical: Clinical
    delivery: Delivery
    wall_clock: Clock

    def evaluate_in_order(
        self, session: Session, patient: PatientRecord, messages: list[Staged]
    ) -> None:
        """Evaluate after each of the patient's messages, seeing only what came before it.

        Only patients with both an iron and an antiresorptive order get here, so the extra
        queries are few; in exchange a batch decides exactly as one-by-one processing would
        (a worse result later in the batch is an ``update``, not a different first alert).
        Each message's result gets ``evaluated`` and the notifications it queued.
        """
        alerts = load_alerts(session, patient.patient_id)
        later = [s.parsed.header.control_id for s in messages if s.parsed]
        for index, staged in enumerate(messages):
            hidden = frozenset(later[index + 1 :])
            assert staged.result is not None
            staged.result.evaluated = True
            staged.result.notifications = self._evaluate(
                session, patient, now=staged.now, alerts=alerts, hidden=hidden
            )

    def _evaluate(
        self,
        session: Session,
        patient: PatientRecord,
        *,
        now: datetime,
        alerts: dict[str, Alert],
        hidden: frozenset[str],
    ) -> list[Notification]:
        clinical = self.clinical
        history = load_history(session, patient, now, clinical.history_days, hidden)
        findings = evaluate_patient(history, clinical.drugs, clinical.labs, clinical.rules, now)
        trends = trend_findings(
            history,
            clinical.drugs,
            clinical.labs,
            clinical.rules,
            now,
            drop_fraction=clinical.trend_drop_fraction,
            baseline_days_before=clinical.monitoring.baseline_days_before,
        )

        def states(rule: str) -> dict[str, AlertState]:
            return {k: alert_state(r) for k, r in alerts.items() if r.rule == rule}

        # The order-time advisory goes out once per at-risk iron episode, and in this
        # transaction, so that a crash neither loses nor repeats it.
        advised = prevention.queue_advisories(
            session,
            patient,
            history,
            clinical,
            self.delivery,
            now=now,
            queued_at=self.wall_clock.now(),
        )
        plans = plan_notifications(states(RULE_INTERACTION), findings)
        plans += plan_trend_notifications(states(RULE_TREND), trends, findings)
        if not plans:
            return advised
        return advised + apply_plans(
            session,
            plans,
            alerts,
            patient.location,
            clinical.drugs,
            self.delivery,
            now=now,
            queued_at=self.wall_clock.now(),
        )


def load_alerts(session: Session, patient_id: str) -> dict[str, Alert]:
    """The patient's alerts by dedup key (those merged into another patient's left out)."""
    rows = session.execute(
        select(Alert).where(col(Alert.patient_id) == patient_id, col(Alert.status) != "merged")
    ).scalars()
    return {row.dedup_key: row for row in rows}


def alert_state(row: Alert) -> AlertState:
    """A stored alert as the planning rules read it."""
    return AlertState(
        dedup_key=row.dedup_key,
        severity=Severity.parse(row.severity),
        value_canonical=row.value_canonical,
        status=row.status,
    )
