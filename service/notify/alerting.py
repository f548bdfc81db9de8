"""Turning notification plans into stored alerts, notifications and outbox rows.

Runs inside the pipeline transaction, so the outbox rows exist exactly when the alert state
that caused them does (the transactional outbox): a crash either loses both or keeps both.
This module decides; ``service.notify.lifecycle`` writes the alert and its history and
``service.notify.outbox`` the notification and its outbox rows.

With paging wired (``Delivery.paging``, see ``service.notify.delivery``) each notification is
routed (alerts.routing): a new alert gets a team (and keeps it: an incident keeps the policy
it started with), high/critical go to the team's tier-1 on-call over its paging channels,
warnings to the team's non-paging channel or the worklist; the audit channels
(``routing.default_channels``, ``--pages-out``) get every notification once, addressed to the
team. A matching silence records the notification and the alert's history but delivers
nothing. Every page carries its signed ack link. Without paging, every notification goes to
the default channels × default recipients.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.catalog import DrugCatalog
from alerts.model import Finding, NotificationPlan
from alerts.notification import Notification
from alerts.routing import RoutingConfig
from service.db.models import Alert, Patient
from service.notify import lifecycle, outbox, routes
from service.notify import metrics as paging_metrics
from service.notify.ack_links import ack_link
from service.notify.content import as_worklist_notice, build_notification
from service.notify.delivery import PAGE_EVENTS, Delivery, Paging
from service.notify.silences import active_silence
from service.runtime import metrics

log = logging.getLogger(__name__)

Routes = list[tuple[str, str]]


def apply_plans(
    session: Session,
    plans: Sequence[NotificationPlan],
    alerts: dict[str, Alert],
    location: str,
    drugs: DrugCatalog,
    delivery: Delivery,
    now: datetime,
    queued_at: datetime,
) -> list[Notification]:
    """Store each plan's effect; return the notifications queued (for metrics and logs).

    ``now`` is the clinical clock (message time in a replay); ``queued_at`` is the wall clock
    the dispatcher schedules deliveries and deadlines by. ``alerts`` (the patient's alerts by
    dedup key) gains the alerts opened. Runs in the caller's transaction; blocks on the
    database.
    """
    queued: list[Notification] = []
    for plan in plans:
        notification = _apply_plan(
            session, plan, alerts, location, drugs, delivery, now=now, queued_at=queued_at
        )
        if notification is not None:
            queued.append(notification)
    return queued


def _apply_plan(
    session: Session,
    plan: NotificationPlan,
    alerts: dict[str, Alert],
    location: str,
    drugs: DrugCatalog,
    delivery: Delivery,
    *,
    now: datetime,
    queued_at: datetime,
) -> Notification | None:
    row = alerts.get(plan.dedup_key)
    worklist = False
    event: str | None = plan.event
    if plan.event == "resolved":
        if row is None or row.status == "resolved":
            return None
        # A worklist entry resolves quietly: nobody was paged for it.
        event = "resolved" if lifecycle.resolve_automatically(session, row, now) else None
    else:
        finding = plan.finding
        assert finding is not None, "alert and update plans carry a finding"
        row = lifecycle.apply_finding(session, row, finding, location, now)
        alerts[finding.dedup_key] = row
        worklist = row.status == "worklist"
        if worklist:
            _announce_worklist(session, row, finding, now)
    paging = delivery.paging
    if paging is not None:
        if plan.event == "resolved":
            detail = {"notified": event is not None}
            lifecycle.record_event(session, row.id or 0, "resolved", now, detail=detail)
        return _page(session, row, event, drugs, delivery, paging, now, queued_at, worklist)
    if event is None:
        return None
    notification = _notification(session, row, event, drugs, delivery, now, worklist)
    outbox.store_notification(
        session,
        notification,
        delivery.flat_deliveries(),
        alert_id=row.id,
        team=row.team,
        now=now,
        queued_at=queued_at,
        deadline=delivery.deadline,
    )
    return notification


def _announce_worklist(session: Session, row: Alert, finding: Finding, now: datetime) -> None:
    """Older than backfill_days when found: the worklist, not a page. Still announced
    (counted, logged, in the history, on the team's non-paging channel), so that a late
    critical value is never silent."""
    metrics.worklist_findings.labels(row.analyte, row.severity).inc()
    log.warning(
        "finding sent to the worklist instead of paging",
        extra={
            "alert_id": row.id,
            "analyte": row.analyte,
            "severity": row.severity,
            "days_old": (now - finding.result.observed_at).days,
        },
    )
    reason = (
        f"result drawn {finding.result.observed_at.isoformat()} was already older than the "
        "backfill limit when it was processed: worklist, not a page"
    )
    lifecycle.record_event(session, row.id or 0, "worklist", now, detail={"reason": reason})


def _notification(
    session: Session,
    row: Alert,
    event: str,
    drugs: DrugCatalog,
    delivery: Delivery,
    now: datetime,
    worklist: bool,
) -> Notification:
    """The alert's next notification (numbered), as a worklist notice when it is one."""
    lifecycle.next_notification_seq(session, row)
    notification = build_notification(row, event, drugs, delivery, now)
    return as_worklist_notice(notification, row) if worklist else notification


# -- paging: route, silence, escalate, address, queue -------------------------------------------


def _page(
    session: Session,
    row: Alert,
    event: str | None,
    drugs: DrugCatalog,
    delivery: Delivery,
    paging: Paging,
    now: datetime,
    queued_at: datetime,
    worklist: bool,
) -> Notification | None:
    """Route, silence and start escalation for one alert event; queue its notification.

    A ``worklist`` event (a finding already too old to page when found) is routed as a notice
    to the team's non-paging channel: no page, no escalation, no ack link.
    """
    if event in ("alert", "update"):
        _route(session, row, paging.routing, first=event == "alert")
        silenced = _mark_silence(session, row, now)
        if event == "alert":
            lifecycle.reset_escalation(session, row)
        pages = row.severity in ("high", "critical") and not worklist
        if pages and not silenced:
            lifecycle.start_paging(session, row, now)
    if event is None:
        return None
    notification = _notification(session, row, event, drugs, delivery, now, worklist)
    if event == "resolved":
        deliveries, recipients = outbox.previous_routes(session, row.id)
    else:
        deliveries, recipients = _target(session, row, paging.routing, notification, now)
    link = ""
    if event in PAGE_EVENTS and row.id is not None and not worklist:
        link = ack_link(paging.settings, row.id, row.dedup_key, queued_at)
    notification = replace(notification, recipients=tuple(recipients), ack_url=link)
    audit = paging.audit_channels
    if row.silence_id is not None:
        _record_silenced(session, row, notification, now)
        deliveries, audit = [], ()
    outbox.store_notification(
        session,
        notification,
        deliveries,
        audit,
        alert_id=row.id,
        team=row.team,
        now=now,
        queued_at=queued_at,
        deadline=paging.deadline,
    )
    return notification


def _route(session: Session, row: Alert, routing: RoutingConfig, *, first: bool) -> None:
    """Give a new alert (or one never routed) its team; an incident keeps its team, unless
    the configuration no longer has it (then the fallback team)."""
    team = row.team
    if first or not team:
        patient = session.execute(
            select(Patient).where(col(Patient.patient_id) == row.patient_id)
        ).scalar_one_or_none()
        team = routes.alert_team(routing, row, patient)
    if team not in routing.teams:
        team = routing.fallback_team
    lifecycle.assign_team(session, row, team)


def _mark_silence(session: Session, row: Alert, now: datetime) -> bool:
    """Mark the alert with the silence that matches it now; True when one does."""
    silence = active_silence(session, row, now)
    lifecycle.mark_silence(session, row, silence.id if silence is not None else None)
    return silence is not None


def _target(
    session: Session,
    row: Alert,
    routing: RoutingConfig,
    notification: Notification,
    now: datetime,
) -> tuple[Routes, tuple[str, ...]]:
    """(channel, address) deliveries and JSON recipients of an alert or update: the team's
    current escalation tier (and the ordering provider when the team wants them)."""
    team = routing.teams[row.team]
    provider = routes.ordering_provider(session, row) if team.add_ordering_provider else ""
    target = routing.target(
        row.team,
        notification.severity,
        now,
        tier=row.escalation_tier,
        ordering_provider=provider,
    )
    paging_metrics.routed.labels(row.team, "true" if target.pages else "false").inc()
    return list(target.deliveries), target.recipients


def _record_silenced(
    session: Session, row: Alert, notification: Notification, now: datetime
) -> None:
    paging_metrics.silenced.labels(notification.event).inc()
    lifecycle.record_event(
        session,
        row.id or 0,
        "silenced",
        now,
        notification_id=notification.notification_id,
        detail={"event": notification.event, "silence_id": row.silence_id},
    )
