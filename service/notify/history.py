"""An alert's whole history, merged in time order: notifications, outbox deliveries and every
attempt, acknowledgements, escalations, stops, silences, failures and resolution."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from service.db.models import Alert, AlertEvent, DeliveryAttempt, NotificationRow, OutboxRow


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # notification | delivery | attempt | acknowledged | escalation | ...
    summary: str
    detail: dict[str, Any]


def alert_history(engine: Engine, alert_id: int) -> list[Entry] | None:
    """None when there is no such alert."""
    with Session(engine) as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            return None
        created = {"dedup_key": alert.dedup_key, "team": alert.team, "status": alert.status}
        entries = [
            Entry(
                at=alert.created_at,
                kind="created",
                summary=f"{alert.severity} {alert.analyte} alert",
                detail=created,
            )
        ]
        notifications = (
            session.execute(
                select(NotificationRow).where(col(NotificationRow.alert_id) == alert_id)
            )
            .scalars()
            .all()
        )
        ids = [n.notification_id for n in notifications]
        for n in notifications:
            payload = json.loads(n.payload)
            entries.append(
                Entry(
                    at=n.created_at,
                    kind="notification",
                    summary=f"{n.event} ({n.severity})",
                    detail={
                        "notification_id": n.notification_id,
                        "recipients": payload.get("recipients", []),
                        "ack_url": bool(payload.get("ack_url")),
                    },
                )
            )
        if ids:
            for o in session.execute(
                select(OutboxRow).where(col(OutboxRow.notification_id).in_(ids))
            ).scalars():
                fallback = " (fallback)" if o.fallback else ""
                entries.append(
                    Entry(
                        at=o.created_at,
                        kind="delivery",
                        summary=f"{o.channel} -> {o.recipient}: {o.status}{fallback}",
                        detail={
                            "notification_id": o.notification_id,
                            "attempts": o.attempts,
                            "last_error": o.last_error,
                            "sent_at": o.sent_at.isoformat() if o.sent_at else None,
                        },
                    )
                )
            for a in session.execute(
                select(DeliveryAttempt).where(col(DeliveryAttempt.notification_id).in_(ids))
            ).scalars():
                summary = f"{a.channel}: {a.outcome} {a.detail}".strip()
                detail = {"notification_id": a.notification_id, "latency_ms": a.latency_ms}
                entries.append(Entry(a.attempted_at, "attempt", summary, detail))
        for e in session.execute(
            select(AlertEvent).where(col(AlertEvent.alert_id) == alert_id)
        ).scalars():
            detail = json.loads(e.detail) if e.detail else {}
            entries.append(Entry(e.at, e.kind, _summary(e.kind, e.actor, detail), detail))
    entries.sort(key=lambda entry: (entry.at, _ORDER.get(entry.kind, 5)))
    return entries


_ORDER = {"created": 0, "notification": 1, "delivery": 2, "attempt": 3}


def _summary(kind: str, actor: str, detail: dict[str, Any]) -> str:
    if kind == "resolved" and detail.get("manual"):
        return f"resolved by hand by {actor}"
    if kind == "acknowledged":
        note = f": {detail['note']}" if detail.get("note") else ""
        return f"by {actor} via {detail.get('source')} - {detail.get('label')}{note}"
    if kind == "escalation":
        return f"step {detail.get('step')} ({detail.get('kind')}) to tier {detail.get('tier')}"
    if kind == "corrective":
        return f"{detail.get('drug')} ordered {detail.get('ordered_at')}: escalation stopped"
    if kind == "corrective-noted":
        return (
            f"{detail.get('drug')} {detail.get('route')} ({detail.get('order_control')}, "
            f"{detail.get('message_time')}) noted, escalation goes on: {detail.get('note')}"
        )
    if kind == "worklist":
        return str(detail.get("reason", "worklist, not a page"))
    if kind == "delivery-failed":
        return f"{detail.get('channel')} -> {detail.get('recipient')} failed: {detail.get('error')}"
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))
