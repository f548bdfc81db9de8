"""Acknowledging an alert (link, API or CLI): the intervention record, and the end of escalation.

``acknowledge`` records who, when, what was done and a note on the alert and in its history,
stops escalation (``alerts.escalation`` sees ``acked_at``), and queues an ``acknowledged``
notification to every route (channel, recipient) that received the alert's pages, in the same
transaction (the transactional outbox). It is idempotent: a second ack returns the first one
with ``already_acknowledged=True`` and changes nothing.

The acknowledged notification is the alert's last notification with the event changed and a
new id (``notification_id(dedup_key, "acknowledged", seq)``), so it needs no catalog and says
exactly what the pages said.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from alerts.notification import notification_from_json
from service.db.models import Alert, AlertEvent, NotificationRow, OutboxRow
from service.notify import ack_tokens as acks
from service.notify import metrics as paging_metrics

if TYPE_CHECKING:
    from service.runtime.settings import Settings

ACK_SOURCES = ("link", "api", "cli")
PAGE_EVENTS = ("alert", "update", "escalation")
_DEFAULT_DEADLINE = timedelta(hours=1)


class AlertNotFound(LookupError):
    """No alert with that id."""


class UnknownAction(ValueError):
    """The action is not one of ``service.notify.ack_tokens.ACK_ACTIONS``."""


@dataclass(frozen=True)
class AckResult:
    alert_id: int
    dedup_key: str
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
    """Acknowledge ``alert_id`` (see the module doc). Raises AlertNotFound, UnknownAction."""
    if action not in acks.ACK_ACTIONS:
        raise UnknownAction(action)
    if source not in ACK_SOURCES:
        raise ValueError(f"source must be one of {', '.join(ACK_SOURCES)}")
    who = (who or "unknown").strip()[:128] or "unknown"
    note = (note or "").strip()[:2000]
    queued_at = datetime.now(UTC)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.execute(
            select(Alert).where(col(Alert.id) == alert_id).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise AlertNotFound(alert_id)
        if row.acked_at is not None:
            return AckResult(
                alert_id, row.dedup_key, row.acked_at, row.acked_by, row.ack_action,
                row.ack_note, True,
            )  # fmt: skip
        row.acked_at, row.acked_by, row.ack_action, row.ack_note = now, who, action, note
        if row.escalation_state in ("", "active"):
            row.escalation_state = "acked"
        row.updated_at = max(row.updated_at, now)
        session.add(row)
        nid = _queue_acknowledged(session, row, now, queued_at)
        session.add(
            AlertEvent(
                alert_id=alert_id,
                kind="acknowledged",
                at=now,
                actor=who,
                notification_id=nid or "",
                detail=json.dumps(
                    {
                        "action": action,
                        "label": acks.ACK_ACTIONS[action],
                        "note": note,
                        "source": source,
                    },
                    sort_keys=True,
                ),  # fmt: skip
            )
        )
        first_page = row.paged_at or row.created_at
        severity = row.severity
    paging_metrics.acks.labels(action, source).inc()
    if first_page is not None:
        seconds = max((now - first_page).total_seconds(), 0.0)
        paging_metrics.time_to_ack.labels(severity).observe(seconds)
    return AckResult(alert_id, row.dedup_key, now, who, action, note, False)


def _queue_acknowledged(
    session: Session, row: Alert, now: datetime, queued_at: datetime
) -> str | None:
    """Queue the ``acknowledged`` notification to the routes that got the pages."""
    last = session.execute(
        select(NotificationRow)
        .where(col(NotificationRow.alert_id) == row.id)
        .order_by(col(NotificationRow.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    if last is None:
        return None
    routes = session.execute(
        select(
            col(OutboxRow.channel),
            col(OutboxRow.recipient),
            col(OutboxRow.created_at),
            col(OutboxRow.deadline_at),
        )
        .join(
            NotificationRow, col(NotificationRow.notification_id) == col(OutboxRow.notification_id)
        )
        .where(
            col(NotificationRow.alert_id) == row.id,
            col(NotificationRow.event).in_(PAGE_EVENTS),
        )
    ).all()
    # Imported here: service.notify.alerting imports this module's ack_link.
    from service.notify.alerting import notification_id

    row.notification_seq += 1
    nid = notification_id(row.dedup_key, "acknowledged", row.notification_seq)
    base = notification_from_json(json.loads(last.payload))
    extra = dict(base.extra)
    extra["ack"] = {
        "by": row.acked_by,
        "at": now.isoformat(),
        "action": row.ack_action,
        "note": row.ack_note,
    }
    notification = replace(
        base, notification_id=nid, event="acknowledged", created_at=now.isoformat(),
        ack_url="", actions=(), extra=extra,
    )  # fmt: skip
    session.add(
        NotificationRow(
            notification_id=nid,
            alert_id=row.id,
            dedup_key=row.dedup_key,
            event="acknowledged",
            severity=row.severity,
            payload=json.dumps(notification.to_json(), sort_keys=True),
            created_at=now,
        )
    )
    deadline = max(
        (deadline_at - created for _, _, created, deadline_at in routes),
        default=_DEFAULT_DEADLINE,
    )
    for channel, recipient in sorted({(c, r) for c, r, _, _ in routes}):
        session.add(
            OutboxRow(
                notification_id=nid,
                channel=channel,
                recipient=recipient,
                next_attempt_at=queued_at,
                deadline_at=queued_at + deadline,
                created_at=queued_at,
            )
        )
    return nid


_SECRETS: dict[int, bytes] = {}


def ack_secret(settings: Settings) -> bytes:
    """The HMAC key of ack links: ``api.ack_secret``, else one random key per process."""
    configured = settings.api.ack_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    return _SECRETS.setdefault(0, acks.new_secret())


def ack_link(settings: Settings, alert_id: int, dedup_key: str, now: datetime) -> str:
    token = acks.make_ack_token(
        ack_secret(settings),
        alert_id,
        dedup_key,
        now,
        timedelta(hours=settings.api.ack_link_ttl_hours),
    )
    return acks.ack_url(settings.api.base_url, token)
