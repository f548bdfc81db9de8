"""Alerts as the API shows them: documents, filtered lists, detail with deliveries, and the
manual resolve (through ``service.notify.lifecycle``, the one writer of alerts and history)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from service.api.context import ApiContext
from service.api.views.common import drug_name, identity, iso
from service.api.views.patients import patient_by_ref, refs
from service.db.models import Alert, DeliveryAttempt, NotificationRow, OutboxRow
from service.notify.lifecycle import lock_alert, resolve_manually

log = logging.getLogger(__name__)


def alert_doc(ctx: ApiContext, row: Alert, patient_ref: int | None) -> dict[str, Any]:
    return {
        "id": row.id,
        # The key pages and webhooks carry (X-LabSentinel-Alert-Id, the JSON dedup_key).
        "public_id": row.public_id,
        "dedup_key": row.dedup_key,
        "rule": row.rule,
        "status": row.status,
        "severity": row.severity,
        "patient": {"ref": patient_ref, **identity(row.patient_id), "location": row.location},
        "analyte": row.analyte,
        "value": row.value,
        "comparator": row.comparator,
        "unit": row.unit,
        "value_canonical": row.value_canonical,
        "reference_range": row.reference_range,
        "observed_at": iso(row.observed_at),
        "iron": {
            "drug": drug_name(ctx, row.iron_drug),
            "dose_at": iso(row.iron_dose_at),
            "days_since": row.days_since_iron,
        },
        "antiresorptive": {
            "drug": drug_name(ctx, row.antiresorptive_drug),
            "dose_at": iso(row.antiresorptive_dose_at),
        },
        "double_trouble": row.double_trouble,
        "backfilled": row.backfilled,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "resolved_at": iso(row.resolved_at),
        "ack": (
            {
                "at": iso(row.acked_at),
                "by": row.acked_by,
                "action": row.ack_action,
                "note": row.ack_note,
            }
            if row.acked_at is not None
            else None
        ),
    }


def list_alerts(
    ctx: ApiContext,
    *,
    status: str | None = None,
    severity: str | None = None,
    patient_ref: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first. Returns (page, total matching). Blocks on the database."""
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
        by_key = refs(session, {r.patient_id for r in rows})
        return [alert_doc(ctx, r, by_key.get(r.patient_id)) for r in rows], int(total)


def alert_detail(ctx: ApiContext, alert_id: int) -> dict[str, Any] | None:
    """The alert, its notifications, and each notification's deliveries and attempts; None
    when there is no such alert. Blocks on the database."""
    with Session(ctx.engine) as session:
        row = session.get(Alert, alert_id)
        if row is None:
            return None
        doc = alert_doc(ctx, row, refs(session, {row.patient_id}).get(row.patient_id))
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
                "attempted_at": iso(a.attempted_at),
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
                "sent_at": iso(o.sent_at),
                "history": by_outbox.get(o.id or 0, []),
            }
        )
    doc["notifications"] = [
        {
            "notification_id": n.notification_id,
            "event": n.event,
            "severity": n.severity,
            "created_at": iso(n.created_at),
            "deliveries": deliveries.get(n.notification_id, []),
        }
        for n in notifications
    ]
    return doc


def resolve_alert(ctx: ApiContext, alert_id: int, *, who: str, now: datetime) -> dict[str, Any]:
    """Close an alert by hand (for example, a false positive after review).

    The alert lifecycle writes the status and a ``resolved`` history event naming ``who``.
    Resolving a resolved alert changes nothing (``changed`` is false). No page goes out: the
    people who act on it are the ones resolving it. Raises ``AlertNotFound`` (a LookupError)
    when there is no such alert. Blocks on the database.
    """
    actor = who[:128]
    with Session(ctx.engine, expire_on_commit=False) as session, session.begin():
        # Read under the row lock, so that of two resolves at once exactly one reports it.
        changed = lock_alert(session, alert_id).status != "resolved"
        row = resolve_manually(session, alert_id, actor=actor, now=now)
        doc = alert_doc(ctx, row, refs(session, {row.patient_id}).get(row.patient_id))
    if changed:
        log.info("alert resolved by hand", extra={"alert_id": alert_id, "by": actor})
    doc["changed"] = changed
    return doc
