"""Turning notification plans into stored alerts, notifications and outbox rows.

Runs inside the pipeline transaction, so the outbox rows exist exactly when the alert state
that caused them does (the transactional outbox): a crash either loses both or keeps both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from alerts.catalog import DrugCatalog
from alerts.model import ANALYTE_CORRECTED_CALCIUM, Finding, NotificationPlan
from alerts.notification import DrugRef, Notification
from service.db.models import Alert, NotificationRow, OutboxRow


@dataclass(frozen=True)
class Delivery:
    """Where notifications go: channels × recipients (issue #7 adds per-team routing)."""

    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    deadline: timedelta
    base_url: str = ""


def notification_id(dedup_key: str, event: str, sequence: int) -> str:
    canonical = f"{dedup_key}|{event}|{sequence}"
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


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
    the dispatcher schedules deliveries and deadlines by.
    """
    queued: list[Notification] = []
    for plan in plans:
        row = alerts.get(plan.dedup_key)
        event: str | None = plan.event
        if plan.event == "resolved":
            if row is None or row.status == "resolved":
                continue
            if row.status != "open":
                event = None  # a worklist entry resolves quietly: nobody was paged for it
            row.status, row.resolved_at, row.updated_at = "resolved", now, now
        else:
            finding = plan.finding
            assert finding is not None, "alert and update plans carry a finding"
            if row is None:
                row = Alert(dedup_key=finding.dedup_key, created_at=now)
                alerts[finding.dedup_key] = row
            _copy_finding(row, finding, location, drugs, now)
            row.status = "worklist" if finding.backfilled and row.status != "open" else "open"
            row.resolved_at = None
            if finding.backfilled:
                event = None  # older than backfill_days when found: worklist, not a page
        session.add(row)
        if event is None:
            continue
        session.flush()  # assigns row.id for a new alert
        row.notification_seq += 1
        notification = build_notification(row, event, drugs, delivery, now)
        _queue(session, row, notification, delivery, now, queued_at)
        queued.append(notification)
    return queued


def _copy_finding(
    row: Alert, finding: Finding, location: str, drugs: DrugCatalog, now: datetime
) -> None:
    result = finding.result
    row.rule = finding.rule
    row.patient_id = finding.patient_id
    row.location = location[:128]
    row.analyte = "calcium" if finding.analyte == ANALYTE_CORRECTED_CALCIUM else finding.analyte
    row.severity = finding.severity.label
    row.value = result.value
    row.comparator = result.comparator
    row.unit = result.unit
    row.value_canonical = finding.value_canonical
    row.reference_range = result.reference_range
    row.observed_at = result.observed_at
    row.result_key = result.result_key
    row.iron_drug = finding.iron.drug
    row.iron_dose_at = finding.iron.start
    row.episode_start = finding.episode_start
    row.days_since_iron = finding.days_since_iron
    row.antiresorptive_drug = finding.antiresorptive.drug
    row.antiresorptive_dose_at = finding.antiresorptive.start
    row.double_trouble = finding.double_trouble
    row.backfilled = finding.backfilled
    row.updated_at = now


def drug_name(drugs: DrugCatalog, key: str) -> str:
    drug = drugs.get(key)
    return drug.name if drug is not None else key


def build_notification(
    row: Alert, event: str, drugs: DrugCatalog, delivery: Delivery, now: datetime
) -> Notification:
    nid = notification_id(row.dedup_key, event, row.notification_seq)
    return Notification(
        notification_id=nid,
        event=event,
        rule=row.rule,
        severity=row.severity,
        dedup_key=row.dedup_key,
        patient_id=row.patient_id,
        patient_location=row.location,
        analyte=row.analyte,
        value=row.value,
        unit=row.unit,
        reference_range=row.reference_range,
        observed_at=row.observed_at.isoformat(),
        iron=DrugRef(
            drug=drug_name(drugs, row.iron_drug),
            dose_at=row.iron_dose_at.isoformat(),
            days_since=row.days_since_iron,
        ),
        antiresorptive=DrugRef(
            drug=drug_name(drugs, row.antiresorptive_drug),
            dose_at=row.antiresorptive_dose_at.isoformat(),
        ),
        recipients=delivery.recipients,
        created_at=now.isoformat(),
        comparator=row.comparator,
        extra={"double_trouble": True} if row.double_trouble else {},
    )


def _queue(
    session: Session,
    row: Alert,
    notification: Notification,
    delivery: Delivery,
    now: datetime,
    queued_at: datetime,
) -> None:
    session.add(
        NotificationRow(
            notification_id=notification.notification_id,
            alert_id=row.id,
            dedup_key=row.dedup_key,
            event=notification.event,
            severity=notification.severity,
            payload=json.dumps(notification.to_json(), sort_keys=True),
            created_at=now,
        )
    )
    for channel in delivery.channels:
        for recipient in delivery.recipients:
            session.add(
                OutboxRow(
                    notification_id=notification.notification_id,
                    channel=channel,
                    recipient=recipient,
                    next_attempt_at=queued_at,
                    deadline_at=queued_at + delivery.deadline,
                    created_at=queued_at,
                )
            )
