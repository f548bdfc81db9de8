"""Turning notification plans into stored alerts, notifications and outbox rows.

Runs inside the pipeline transaction, so the outbox rows exist exactly when the alert state
that caused them does (the transactional outbox): a crash either loses both or keeps both.

With paging wired (``Delivery.paging``, see ``load_paging``) each notification is routed
(alerts.routing): a new alert gets a team (and keeps it: an incident keeps the policy it
started with), high/critical go to the team's tier-1 on-call over its paging channels,
warnings to the team's non-paging channel or the worklist; the audit channels
(``routing.default_channels``, ``--pages-out``) get every notification once, addressed to the
team. A matching silence records the notification and the alert's history but delivers
nothing. Every page carries its signed ack link.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select
from sqlmodel import Session, col

from alerts.catalog import DrugCatalog
from alerts.model import ANALYTE_CORRECTED_CALCIUM, Finding, NotificationPlan
from alerts.notification import DrugRef, Notification
from alerts.routing import RoutingConfig, RoutingError, Subject, load_routing
from service.db.models import (
    Alert,
    AlertEvent,
    MedicationOrderRow,
    NotificationRow,
    OutboxRow,
    Patient,
    Silence,
)
from service.notify import metrics as paging_metrics
from service.notify.acknowledge import ack_link
from service.runtime import metrics

if TYPE_CHECKING:
    from service.runtime.settings import Settings

log = logging.getLogger(__name__)

PAGE_EVENTS = ("alert", "update", "escalation")
# Channel types that reach people outside LabSentinel: the page identity setting applies.
PAGING_TYPES = ("wctp", "smtp", "webhook")


@dataclass(frozen=True)
class Paging:
    """Routing, schedules and policies plus what building a page needs from the settings."""

    routing: RoutingConfig
    settings: Settings
    audit_channels: tuple[str, ...]
    deadline: timedelta


@dataclass(frozen=True)
class Delivery:
    """Where notifications go. Without ``paging``: ``channels`` × ``recipients`` (the
    pre-routing behaviour); with it: routed per team, ``channels`` being the audit channels."""

    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    deadline: timedelta
    base_url: str = ""
    paging: Paging | None = None


def load_paging(settings: Settings, channels: Iterable[str]) -> Paging | None:
    """Read and validate ``routing.config`` (None when it is empty). Raises ConfigError."""
    from service.runtime.settings import ConfigError

    if not settings.routing.config:
        return None
    path = settings.resolve_path(settings.routing.config)
    channels = tuple(channels)
    try:
        routing = _load_routing(str(path), settings.hospital.timezone, channels)
    except FileNotFoundError:
        raise ConfigError(f"config key 'routing.config': file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config key 'routing.config': {path} is not valid TOML: {exc}") from None
    except RoutingError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    audit = tuple(c for c in settings.routing.default_channels if c in channels)
    audit += tuple(c for c in channels if c not in settings.channels and c not in audit)
    return Paging(routing, settings, audit, timedelta(seconds=settings.dispatcher.deadline_s))


@functools.lru_cache(maxsize=8)
def _load_routing(path: str, timezone: str, channels: tuple[str, ...]) -> RoutingConfig:
    from zoneinfo import ZoneInfo

    with Path(path).open("rb") as fh:
        doc = tomllib.load(fh)
    return load_routing(doc, ZoneInfo(timezone), channels)


def routed_delivery(delivery: Delivery, settings: Settings) -> Delivery:
    """``delivery`` (as bootstrap built it) with paging wired; idempotent."""
    if delivery.paging is not None:
        return delivery
    channels = {n for n, c in settings.channels.items() if c.enabled} | set(delivery.channels)
    paging = load_paging(settings, sorted(channels))
    if paging is None:
        return delivery
    paging = replace(paging, audit_channels=delivery.channels, deadline=delivery.deadline)
    return replace(delivery, paging=paging)


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
        worklist = False
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
                # A table model does not validate on construction; _copy_finding fills the rest.
                row = Alert(dedup_key=finding.dedup_key, created_at=now)  # type: ignore[call-arg]
                alerts[finding.dedup_key] = row
            _copy_finding(row, finding, location, drugs, now)
            row.status = "worklist" if finding.backfilled and row.status != "open" else "open"
            row.resolved_at = None
            # Older than backfill_days when found: the worklist, not a page. Still announced
            # (counted, logged, in the history, on the team's non-paging channel), so that a
            # late critical value is never silent.
            worklist = row.status == "worklist"
        session.add(row)
        if worklist and plan.finding is not None:
            session.flush()  # assigns row.id for a new alert
            _announce_worklist(row, plan.finding, now)
            reason = _stale_reason(plan.finding)
            _record(session, row, "worklist", now, detail={"reason": reason})
        if delivery.paging is not None:
            session.flush()  # assigns row.id for a new alert
            if plan.event == "resolved":
                _record(session, row, "resolved", now, detail={"notified": event is not None})
            notification = _apply_paging(
                session, row, event, drugs, delivery, delivery.paging, now, queued_at, worklist
            )
            if notification is not None:
                queued.append(notification)
            continue
        if event is None:
            continue
        session.flush()  # assigns row.id for a new alert
        row.notification_seq += 1
        notification = build_notification(row, event, drugs, delivery, now)
        if worklist:
            notification = _as_worklist_notice(notification, row)
        _queue(session, row, notification, delivery, now, queued_at)
        queued.append(notification)
    return queued


# -- paging ---------------------------------------------------------------------------------


def _apply_paging(
    session: Session,
    row: Alert,
    event: str | None,
    drugs: DrugCatalog,
    delivery: Delivery,
    paging: Paging,
    now: datetime,
    queued_at: datetime,
    worklist: bool = False,
) -> Notification | None:
    """Route, silence and start escalation for one alert event; queue its notification.

    A ``worklist`` event (a finding already too old to page when found) is routed as a notice
    to the team's non-paging channel: no page, no escalation, no ack link.
    """
    routing = paging.routing
    pages = row.severity in ("high", "critical") and not worklist
    if event in ("alert", "update"):
        if event == "alert" or not row.team:
            patient = session.execute(
                select(Patient).where(col(Patient.patient_id) == row.patient_id)
            ).scalar_one_or_none()
            subject = Subject(
                rule=row.rule,
                severity=row.severity,
                location=row.location,
                facility=patient.facility if patient else "",
                service=patient.service if patient else "",
            )
            row.team = routing.route(subject)
        if row.team not in routing.teams:  # the config changed since: re-route to fallback
            row.team = routing.fallback_team
        silence = active_silence(session, row, now)
        row.silence_id = silence.id if silence is not None else None
        if event == "alert":
            _reset_escalation(row)
        if pages and silence is None:
            if row.escalation_state in ("", "exhausted"):
                row.escalation_state, row.escalation_tier, row.escalation_round = "active", 1, 0
            row.paged_at = now  # a worsening restarts the timer of the current tier
    if event is None:
        return None
    row.notification_seq += 1
    notification = build_notification(row, event, drugs, delivery, now)
    if worklist:
        notification = _as_worklist_notice(notification, row)
    if event == "resolved":
        deliveries, recipients = previous_routes(session, row)
        if row.escalation_state in ("active", "acked"):
            row.escalation_state, row.stop_reason = "stopped", "resolved"
    else:
        team = routing.teams[row.team]
        provider = _ordering_provider(session, row) if team.add_ordering_provider else ""
        target = routing.target(
            row.team,
            notification.severity,
            now,
            tier=row.escalation_tier,
            ordering_provider=provider,
        )
        deliveries, recipients = list(target.deliveries), target.recipients
        paging_metrics.routed.labels(row.team, "true" if target.pages else "false").inc()
    link = ""
    if event in PAGE_EVENTS and row.id is not None and not worklist:
        link = ack_link(paging.settings, row.id, row.dedup_key, queued_at)
    notification = replace(notification, recipients=tuple(recipients), ack_url=link)
    if row.silence_id is not None:
        paging_metrics.silenced.labels(event).inc()
        _record(
            session, row, "silenced", now, notification.notification_id,
            {"event": event, "silence_id": row.silence_id},
        )  # fmt: skip
        deliveries = []
        audit: tuple[str, ...] = ()
    else:
        audit = paging.audit_channels
    queue_notification(
        session, row, notification, deliveries, audit, now, queued_at, paging.deadline
    )
    return notification


def _stale_reason(finding: Finding) -> str:
    return (
        f"result drawn {finding.result.observed_at.isoformat()} was already older than the "
        "backfill limit when it was processed: worklist, not a page"
    )


def _announce_worklist(row: Alert, finding: Finding, now: datetime) -> None:
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


def _as_worklist_notice(notification: Notification, row: Alert) -> Notification:
    """The notice of a worklist finding: severity ``info`` so that no route pages it; the
    severity it would have paged with, and why it did not, travel beside it."""
    return replace(
        notification,
        severity="info",
        extra={
            **notification.extra,
            "worklist": True,
            "finding_severity": row.severity,
            "reason": "result already older than the backfill limit when found",
        },
    )


def _reset_escalation(row: Alert) -> None:
    """A new alert (or one raised again after resolving): a fresh incident."""
    row.escalation_state, row.escalation_tier, row.escalation_round = "", 1, 0
    row.stop_reason, row.paged_at = "", None
    row.acked_at, row.acked_by, row.ack_action, row.ack_note = None, "", "", ""
    row.corrective_at, row.corrective_drug, row.delivery_failed_at = None, "", None


def queue_notification(
    session: Session,
    row: Alert,
    notification: Notification,
    deliveries: Iterable[tuple[str, str]],
    audit_channels: Iterable[str],
    now: datetime,
    queued_at: datetime,
    deadline: timedelta,
) -> None:
    """Store an alert's notification with its outbox rows (see ``store_notification``)."""
    store_notification(
        session, notification, deliveries, audit_channels,
        alert_id=row.id, team=row.team, now=now, queued_at=queued_at, deadline=deadline,
    )  # fmt: skip


def store_notification(
    session: Session,
    notification: Notification,
    deliveries: Iterable[tuple[str, str]],
    audit_channels: Iterable[str],
    *,
    alert_id: int | None,
    team: str,
    now: datetime,
    queued_at: datetime,
    deadline: timedelta,
) -> None:
    """Store ``notification`` and one outbox row per (channel, address), plus one per audit
    channel not already among them (addressed to ``team``). Advisories and reminders belong
    to no alert (``alert_id`` None)."""
    session.add(
        NotificationRow(
            notification_id=notification.notification_id,
            alert_id=alert_id,
            dedup_key=notification.dedup_key,
            event=notification.event,
            severity=notification.severity,
            payload=json.dumps(notification.to_json(), sort_keys=True),
            created_at=now,
        )
    )
    rows = dict.fromkeys(deliveries)
    used = {channel for channel, _ in rows}
    for channel in audit_channels:
        if channel not in used:
            rows[(channel, team or "unrouted")] = None
    for channel, recipient in rows:
        session.add(
            OutboxRow(
                notification_id=notification.notification_id,
                channel=channel,
                recipient=recipient[:128],
                next_attempt_at=queued_at,
                deadline_at=queued_at + deadline,
                created_at=queued_at,
            )
        )


def previous_routes(session: Session, row: Alert) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """(channel, recipient) pairs and JSON recipients of the alert's earlier pages (for the
    resolved and acknowledged notices: they go to whoever was paged)."""
    pairs = session.execute(
        select(col(OutboxRow.channel), col(OutboxRow.recipient))
        .join(
            NotificationRow, col(NotificationRow.notification_id) == col(OutboxRow.notification_id)
        )
        .where(
            col(NotificationRow.alert_id) == row.id,
            col(NotificationRow.event).in_(PAGE_EVENTS),
        )
        .distinct()
    ).all()
    payloads = session.execute(
        select(col(NotificationRow.payload)).where(
            col(NotificationRow.alert_id) == row.id,
            col(NotificationRow.event).in_(PAGE_EVENTS),
        )
    ).scalars()
    recipients: dict[str, None] = {}
    for payload in payloads:
        recipients.update(dict.fromkeys(json.loads(payload).get("recipients", ())))
    return sorted((c, r) for c, r in pairs), tuple(recipients)


def active_silence(session: Session, row: Alert, now: datetime) -> Silence | None:
    """The newest silence matching the alert's patient, unit (point of care) and rule."""
    unit = row.location.split("/", 1)[0]
    return (
        session.execute(
            select(Silence)
            .where(
                col(Silence.expired_at).is_(None),
                col(Silence.created_at) <= now,
                col(Silence.expires_at) > now,
                or_(col(Silence.patient_id) == "", col(Silence.patient_id) == row.patient_id),
                or_(col(Silence.unit) == "", col(Silence.unit) == unit),
                or_(col(Silence.rule) == "", col(Silence.rule) == row.rule),
            )
            .order_by(col(Silence.id).desc())
            .limit(1)
        )
        .scalars()
        .first()
    )


def _ordering_provider(session: Session, row: Alert) -> str:
    """ORC-12 of the iron order that opened the alert's episode (latest dose ≤ the result)."""
    provider = session.execute(
        select(col(MedicationOrderRow.ordering_provider))
        .where(
            and_(
                col(MedicationOrderRow.patient_id) == row.patient_id,
                col(MedicationOrderRow.drug_class) == "iv_iron",
                col(MedicationOrderRow.ordering_provider) != "",
                col(MedicationOrderRow.dose_at) <= row.observed_at,
            )
        )
        .order_by(col(MedicationOrderRow.dose_at).desc())
        .limit(1)
    ).scalar_one_or_none()
    return (provider or "").split("^", 1)[0]


def _record(
    session: Session,
    row: Alert,
    kind: str,
    at: datetime,
    notification_id: str = "",
    detail: dict[str, object] | None = None,
    actor: str = "labsentinel",
) -> None:
    record_event(session, row.id or 0, kind, at, notification_id, detail, actor)


def record_event(
    session: Session,
    alert_id: int,
    kind: str,
    at: datetime,
    notification_id: str = "",
    detail: dict[str, object] | None = None,
    actor: str = "labsentinel",
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert_id,
            kind=kind,
            at=at,
            actor=actor,
            notification_id=notification_id,
            detail=json.dumps(detail or {}, sort_keys=True),
        )
    )


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
    """Without a routing file: every default channel × every default recipient."""
    deliveries = [(c, r) for c in delivery.channels for r in delivery.recipients]
    store_notification(
        session, notification, deliveries, (), alert_id=row.id, team=row.team, now=now,
        queued_at=queued_at, deadline=delivery.deadline,
    )  # fmt: skip
