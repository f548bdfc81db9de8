"""Acknowledging an alert (link, API or CLI): the intervention record, and the end of escalation.

``acknowledge`` records who, when, what was done and a note on the alert and in its history,
stops escalation (``alerts.escalation`` sees ``acked_at``), and queues an ``acknowledged``
notification to every route (channel, recipient) that received the alert's pages, in the same
transaction (the transactional outbox). It is idempotent: a second ack returns the first one
with ``already_acknowledged=True`` and changes nothing.

The acknowledged notification is the alert's last notification with the event changed and a
new id (``notification_id(public_id, "acknowledged", seq)``), so it needs no catalog and says
exactly what the pages said.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from service.db.models import Alert
from service.notify import ack_tokens as acks
from service.notify import lifecycle, outbox
from service.notify import metrics as paging_metrics
from service.notify.lifecycle import AlertNotFound

__all__ = ["ACK_SOURCES", "AckResult", "AlertNotFound", "UnknownAction", "acknowledge"]

ACK_SOURCES = ("link", "api", "web", "cli")
# Deadline of the acknowledged notice when the alert's pages left no outbox rows to copy it from.
_DEFAULT_DEADLINE = timedelta(hours=1)


class UnknownAction(ValueError):
    """The action is not one of ``service.notify.ack_tokens.ACK_ACTIONS``."""


@dataclass(frozen=True)
class AckResult:
    alert_id: int
    public_id: str  # the alert's random public id (the dedup key stays in the database)
    acked_at: datetime
    acked_by: str
    action: str
    note: str
    already_acknowledged: bool


def acknowledge(
    engine: Engine,
    alert_id: int,
    *,
    who: str,
    action: str,
    note: str,
    now: datetime,
    source: str,
) -> AckResult:
    """Acknowledge ``alert_id`` (see the module doc) in its own transaction, the alert's row
    locked. Raises AlertNotFound, UnknownAction, ValueError (unknown ``source``); blocks on
    the database."""
    if action not in acks.ACK_ACTIONS:
        raise UnknownAction(action)
    if source not in ACK_SOURCES:
        raise ValueError(f"source must be one of {', '.join(ACK_SOURCES)}")
    who = (who or "unknown").strip()[:128] or "unknown"
    note = (note or "").strip()[:2000]
    queued_at = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = lifecycle.lock_alert(session, alert_id)
        if row.acked_at is not None:
            return AckResult(
                alert_id=alert_id,
                public_id=row.public_id,
                acked_at=row.acked_at,
                acked_by=row.acked_by,
                action=row.ack_action,
                note=row.ack_note,
                already_acknowledged=True,
            )
        lifecycle.acknowledge(session, row, who=who, action=action, note=note, now=now)
        nid = _queue_acknowledged(session, row, now, queued_at)
        detail = {
            "action": action,
            "label": acks.ACK_ACTIONS[action],
            "note": note,
            "source": source,
        }
        lifecycle.record_event(
            session,
            alert_id,
            "acknowledged",
            now,
            notification_id=nid or "",
            detail=detail,
            actor=who,
        )
        first_page = row.paged_at or row.created_at
        severity = row.severity
    paging_metrics.acks.labels(action, source).inc()
    if first_page is not None:
        seconds = max((now - first_page).total_seconds(), 0.0)
        paging_metrics.time_to_ack.labels(severity).observe(seconds)
    return AckResult(
        alert_id=alert_id,
        public_id=row.public_id,
        acked_at=now,
        acked_by=who,
        action=action,
        note=note,
        already_acknowledged=False,
    )


def _queue_acknowledged(
    session: Session, row: Alert, now: datetime, queued_at: datetime
) -> str | None:
    """Queue the ``acknowledged`` notification to the routes that got the pages; its id, or
    None when the alert has no notification to copy."""
    alert_id = row.id or 0
    nid = outbox.notification_id(row.public_id, "acknowledged", row.notification_seq + 1)
    ack = {
        "by": row.acked_by,
        "at": now.isoformat(),
        "action": row.ack_action,
        "note": row.ack_note,
    }
    notification = outbox.copy_last_notification(
        session,
        alert_id,
        notification_id=nid,
        event="acknowledged",
        now=now,
        extra={"ack": ack},
        alert_key=row.public_id,
    )
    if notification is None:
        return None
    lifecycle.next_notification_seq(session, row)
    routes, deadline = outbox.page_routes(session, alert_id, _DEFAULT_DEADLINE)
    outbox.store_notification(
        session,
        notification,
        routes,
        alert_id=alert_id,
        team=row.team,
        now=now,
        queued_at=queued_at,
        deadline=deadline,
        severity=row.severity,
    )
    return nid
