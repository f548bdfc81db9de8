"""Escalation steps: re-page the next tier when nobody acknowledges, stop when someone acts.

``escalate(engine, config, now, queued_at)`` takes every step due at ``now`` under a routing
file (``TeamRouting``); ``service.notify.routed.RoutedPaging.escalate`` calls it, and
``service.notify.escalation`` runs it as a job. A plain function of the database and ``now``.
``preview(engine, config, now)`` decides the same way and does nothing: the rehearsal behind
``labsentinel escalations run --dry-run``.

Per open alert that is paging (``escalation_state`` active or acked), in its own transaction
with the alert row locked:

1. corrective therapy (configs/routing.toml ``[corrective]``) newly ordered or given at or
   after the alert, of a configured kind and route (``alerts.escalation.corrective_stops``),
   stops escalation for good and is noted on the alert and in its history. Any other message
   about a corrective drug since the alert (a refill, renewal or status message of a standing
   oral supplement) never stops it: it is recorded once as a ``corrective-noted`` event
   ("standing oral supplement noted") and listed in the report's ``noted``;
2. otherwise ``alerts.escalation.decide`` says what is due: next tier, a policy repeat, a
   re-page after an ack timed out, or the end of the policy (``exhausted``, visible).

State lives in the alert row, and an escalation's notification id contains its step number
(``notification_id(public_id, "escalation", step)``) in the same transaction that advances the
step: a restart neither loses nor repeats a step, and two instances racing on one step collide
on the unique notification id instead of paging twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from alerts.escalation import (
    CorrectiveCheck,
    Decision,
    EscalationState,
    Step,
    TherapyMessage,
    corrective_stops,
    decide,
)
from service.db.models import Alert, AlertEvent, MedicationOrderRow
from service.notify import lifecycle, outbox
from service.notify import metrics as paging_metrics
from service.notify.ack_links import ack_link
from service.notify.delivery import EscalationReport, TeamRouting
from service.notify.silences import active_silence

log = logging.getLogger(__name__)

NOTED = "corrective-noted"  # alert event: a corrective-drug message that did not stop paging


def escalate(
    engine: Engine, config: TeamRouting, now: datetime, queued_at: datetime | None
) -> EscalationReport:
    """Take every escalation step due at ``now`` (see the module doc). ``queued_at``: when
    the pages are queued (the wall clock at each step when None).

    Each alert in its own transaction; a step another instance took first is skipped. Raises
    SQLAlchemyError (database); blocks on the database.
    """
    report = EscalationReport()
    with Session(engine) as session:
        ids = list(
            session.execute(
                select(col(Alert.id)).where(
                    col(Alert.status) == "open",
                    col(Alert.escalation_state).in_(("active", "acked")),
                )
            ).scalars()
        )
    for alert_id in ids:
        try:
            _step(engine, config, alert_id, now, queued_at or datetime.now(UTC), report)
        except IntegrityError:  # another instance took this step first
            log.info("escalation step already taken", extra={"alert_id": alert_id})
    return report


@dataclass(frozen=True)
class PlannedStep:
    """One escalation step that ``escalate`` would take at a time (``preview``)."""

    alert_id: int
    severity: str
    team: str
    kind: str  # escalate | repeat | ack-timeout | exhausted | corrective
    tier: int
    recipients: tuple[str, ...] = ()
    deliveries: tuple[tuple[str, str], ...] = ()  # (channel, address)
    note: str = ""


def preview(engine: Engine, config: TeamRouting, now: datetime) -> list[PlannedStep]:
    """What ``escalate(engine, config, now, ...)`` would do, without doing any of it: one
    read-only session, no row locks, no notifications, events, metrics or state changes (a
    rehearsal of a time in the future must leave nothing behind). Decided the same way as
    ``_step``: corrective therapy first, then ``decide``. Raises SQLAlchemyError; blocks on
    the database.
    """
    routing = config.routing
    planned: list[PlannedStep] = []
    with Session(engine) as session:
        rows = session.execute(
            select(Alert)
            .where(
                col(Alert.status) == "open",
                col(Alert.escalation_state).in_(("active", "acked")),
            )
            .order_by(col(Alert.id))
        ).scalars()
        for row in rows:
            if row.team not in routing.teams:
                continue
            alert_id = row.id or 0
            check, decision = _assess(session, config, row, now)
            if decision is None:
                assert check is not None and check.stop is not None
                note = f"corrective therapy {check.stop.drug} stops escalation"
                planned.append(
                    PlannedStep(alert_id, row.severity, row.team, "corrective", 0, note=note)
                )
                continue
            if decision.step is Step.NONE:
                continue
            if decision.step is Step.EXHAUSTED:
                planned.append(
                    PlannedStep(
                        alert_id,
                        row.severity,
                        row.team,
                        decision.step.value,
                        row.escalation_tier,
                        note="policy exhausted: escalation ends",
                    )
                )
                continue
            target = routing.target(row.team, row.severity, now, tier=decision.tier)
            planned.append(
                PlannedStep(
                    alert_id,
                    row.severity,
                    row.team,
                    decision.step.value,
                    decision.tier,
                    target.recipients,
                    target.deliveries,
                    decision.reason,
                )
            )
    return planned


def _assess(
    session: Session, config: TeamRouting, row: Alert, now: datetime
) -> tuple[CorrectiveCheck | None, Decision | None]:
    """What is due for an open alert of a routed team at ``now``, read only; the one decision
    that both ``escalate`` and ``preview`` act on. The corrective check comes first (None once
    corrective therapy is recorded on the alert); when it stops escalation there is no
    decision, else ``decide`` gives the step (a silence counts)."""
    check = _corrective_check(session, config, row, now) if row.corrective_at is None else None
    if check is not None and check.stop is not None:
        return check, None
    routing = config.routing
    silenced = active_silence(session, row, now) is not None
    tiers = routing.teams[row.team].schedule.tier_count
    return check, decide(_state(row, silenced), routing.policy_of(row.team), tiers, now)


def _state(row: Alert, silenced: bool) -> EscalationState:
    return EscalationState(
        status=row.status,
        severity=row.severity,
        state=row.escalation_state,
        paged_at=row.paged_at,
        tier=row.escalation_tier,
        round=row.escalation_round,
        step=row.escalation_step,
        acked_at=row.acked_at,
        corrective_at=row.corrective_at,
        silenced=silenced,
    )


def _step(
    engine: Engine,
    config: TeamRouting,
    alert_id: int,
    now: datetime,
    queued_at: datetime,
    report: EscalationReport,
) -> None:
    routing = config.routing
    with Session(engine, expire_on_commit=False) as session, session.begin():
        try:
            row = lifecycle.lock_alert(session, alert_id)
        except lifecycle.AlertNotFound:
            return
        if row.status != "open" or row.team not in routing.teams:
            return
        check, decision = _assess(session, config, row, now)
        if check is not None and _corrective(session, row, check, now, report):
            report.stopped.append((alert_id, "corrective"))
            return
        assert decision is not None  # no corrective stop, so a decision was made
        if decision.step is Step.NONE:
            return
        if decision.step is Step.EXHAUSTED:
            lifecycle.exhaust_escalation(session, row, now)
            paging_metrics.escalations.labels(row.severity, "exhausted").inc()
            report.exhausted.append(alert_id)
            log.warning(
                "escalation policy exhausted without an acknowledgement",
                extra={"alert_id": alert_id, "team": row.team},
            )
            return
        lifecycle.advance_escalation(session, row, decision, now)
        lifecycle.next_notification_seq(session, row)
        _queue_escalation(session, config, row, decision, now, queued_at)
    paging_metrics.escalations.labels(row.severity, decision.step.value).inc()
    report.escalated.append((alert_id, decision.step.value, decision.number))
    log.info(
        "escalated",
        extra={"alert_id": alert_id, "kind": decision.step.value, "tier": decision.tier},
    )


def _queue_escalation(
    session: Session,
    config: TeamRouting,
    row: Alert,
    decision: Decision,
    now: datetime,
    queued_at: datetime,
) -> None:
    """Queue the step's page (the alert's last notification re-addressed to the tier) and
    its history event. The id holds the step number: two instances racing on one step
    collide on it (IntegrityError) instead of paging twice."""
    alert_id = row.id or 0
    nid = outbox.notification_id(row.public_id, "escalation", decision.number)
    target = config.routing.target(row.team, row.severity, now, tier=decision.tier)
    step = {
        "step": decision.number,
        "tier": decision.tier,
        "round": decision.round,
        "kind": decision.step.value,
    }
    notification = outbox.copy_last_notification(
        session,
        alert_id,
        notification_id=nid,
        event="escalation",
        now=now,
        extra={"escalation": step},
        drop_extra=("ack",),
        recipients=target.recipients,
        ack_url=ack_link(config.settings, row.public_id, queued_at),
        alert_key=row.public_id,
    )
    if notification is None:  # an escalating alert was paged, so it has a notification
        raise LookupError(f"alert {alert_id} has no notification to escalate")
    outbox.store_notification(
        session,
        notification,
        target.deliveries,
        config.audit_channels,
        alert_id=alert_id,
        team=row.team,
        now=now,
        queued_at=queued_at,
        deadline=config.deadline,
    )
    detail = {**step, "recipients": list(target.recipients)}
    lifecycle.record_event(session, alert_id, "escalation", now, notification_id=nid, detail=detail)


def _corrective_check(
    session: Session, config: TeamRouting, row: Alert, now: datetime
) -> CorrectiveCheck:
    """What the corrective-drug messages up to ``now`` say about the alert (reads only)."""
    rows = session.execute(
        select(MedicationOrderRow).where(
            col(MedicationOrderRow.patient_id) == row.patient_id,
            col(MedicationOrderRow.drug_class) == "corrective",
            col(MedicationOrderRow.message_time) <= now,
        )
    ).scalars()
    messages = [
        TherapyMessage(
            order_key=o.order_key,
            drug=o.drug,
            route=o.route,
            order_control=o.order_control,
            dose_at=o.dose_at,
            message_time=o.message_time,
            administered=o.administered,
            completion_status=o.completion_status,
        )
        for o in rows
    ]
    return corrective_stops(row.analyte, row.created_at, messages, config.routing.corrective)


def _corrective(
    session: Session, row: Alert, check: CorrectiveCheck, now: datetime, report: EscalationReport
) -> bool:
    """Stop escalation when corrective therapy qualifies; note the messages that do not."""
    _note(session, row, check.noted, now, report)
    if check.stop is None:
        return False
    stop = check.stop
    ordered_at = stop.dose_at if stop.administered else stop.message_time
    lifecycle.stop_for_corrective(session, row, drug=stop.drug, ordered_at=ordered_at, now=now)
    lifecycle.record_event(
        session,
        row.id or 0,
        "corrective",
        now,
        detail={
            "drug": stop.drug,
            "ordered_at": ordered_at.isoformat(),
            "route": stop.route,
            "order_control": stop.order_control,
            "administered": stop.administered,
        },
    )
    paging_metrics.escalation_stops.labels("corrective").inc()
    log.info("corrective therapy ordered: escalation stopped", extra={"alert_id": row.id})
    return True


def _note(
    session: Session,
    row: Alert,
    noted: tuple[tuple[TherapyMessage, str], ...],
    now: datetime,
    report: EscalationReport,
) -> None:
    """Record each non-stopping corrective message once on the alert (history, report)."""
    if not noted:
        return
    seen = {
        (d.get("order_key"), d.get("message_time"), d.get("order_control"))
        for d in (
            json.loads(detail or "{}")
            for detail in session.execute(
                select(col(AlertEvent.detail)).where(
                    col(AlertEvent.alert_id) == row.id, col(AlertEvent.kind) == NOTED
                )
            ).scalars()
        )
    }
    for message, why in noted:
        key = (message.order_key, message.message_time.isoformat(), message.order_control)
        if key in seen:
            continue
        seen.add(key)
        lifecycle.record_event(
            session,
            row.id or 0,
            NOTED,
            now,
            detail={
                "note": why,
                "drug": message.drug,
                "route": message.route,
                "order_key": message.order_key,
                "order_control": message.order_control,
                "message_time": message.message_time.isoformat(),
            },
        )
        report.noted.append((row.id or 0, message.drug, why))
