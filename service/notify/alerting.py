"""Turning notification plans into stored alerts, notifications and outbox rows.

Runs inside the pipeline transaction, so the outbox rows exist exactly when the alert state
that caused them does (the transactional outbox): a crash either loses both or keeps both.
This module decides; ``service.notify.lifecycle`` writes the alert and its history and
``service.notify.outbox`` the notification and its outbox rows.

Who a notification goes to, and what paging does around it (team, silence, escalation
start, ack link), is the ``Paging`` object's (``Delivery.paging``, see
``service.notify.delivery``): routed under a routing file (``service.notify.routed``), else
flat (the default channels × default recipients).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from alerts.catalog import DrugCatalog
from alerts.model import Finding, NotificationPlan
from alerts.notification import Notification
from service.db.models import Alert
from service.notify import lifecycle, outbox
from service.notify.content import as_worklist_notice, build_notification
from service.notify.delivery import Delivery
from service.runtime import metrics

log = logging.getLogger(__name__)


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
    paging.track_alert(
        session, row, plan.event, notified=event is not None, worklist=worklist, now=now
    )
    if event is None:
        return None
    notification = _notification(session, row, event, drugs, delivery, now, worklist)
    addressed = paging.address_alert(
        session, row, notification, now=now, queued_at=queued_at, worklist=worklist
    )
    outbox.store_notification(
        session,
        addressed.notification,
        addressed.deliveries,
        addressed.audit_channels,
        alert_id=row.id,
        team=row.team,
        now=now,
        queued_at=queued_at,
        deadline=addressed.deadline,
    )
    return addressed.notification


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
