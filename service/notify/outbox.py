"""The one writer of notifications and their outbox rows (``NotificationRow``, ``OutboxRow``).

A notification is stored with one outbox row per (channel, recipient) in the transaction of
the state change that caused it (the transactional outbox): a crash keeps both or neither.
The alert path, acknowledgements, escalations, advisories, reminders and the dispatcher's
fallback route all queue through here. The dispatcher, the outbox's consumer, updates the
rows it claimed (lease, attempts, status) and writes its delivery attempts itself.

All functions run in the caller's session and transaction, never commit, and block only on
the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.notification import Notification, notification_from_json
from service.db.models import NotificationRow, OutboxRow
from service.notify.delivery import PAGE_EVENTS


def notification_id(key: str, event: str, sequence: int) -> str:
    """Stable id of an alert's ``sequence``-th notification: a repeat collides, never pages
    twice. ``key`` is the alert's public id (random: the id, which every transport sends,
    reveals nothing), or a notice's key."""
    canonical = f"{key}|{event}|{sequence}"
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def store_notification(
    session: Session,
    notification: Notification,
    deliveries: Iterable[tuple[str, str]],
    audit_channels: Iterable[str] = (),
    *,
    alert_id: int | None,
    team: str,
    now: datetime,
    queued_at: datetime,
    deadline: timedelta,
    severity: str | None = None,
) -> None:
    """Store ``notification`` and one outbox row per (channel, address), plus one per audit
    channel not already among them (addressed to ``team``). Advisories and reminders belong
    to no alert (``alert_id`` None). ``severity`` overrides the notification's in the
    stored row (an acknowledgement is filed under its alert's severity)."""
    session.add(
        NotificationRow(
            notification_id=notification.notification_id,
            alert_id=alert_id,
            dedup_key=notification.dedup_key,
            event=notification.event,
            severity=severity or notification.severity,
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
        _add_outbox_row(
            session, notification.notification_id, channel, recipient, queued_at, deadline
        )


def queue_fallback(
    session: Session,
    notification_id: str,
    deliveries: Iterable[tuple[str, str]],
    now: datetime,
    deadline: timedelta,
) -> None:
    """Queue an already stored notification again on the fallback route (marked so, so that
    a failing fallback does not fall back again)."""
    for channel, recipient in deliveries:
        _add_outbox_row(session, notification_id, channel, recipient, now, deadline, True)


def _add_outbox_row(
    session: Session,
    notification_id: str,
    channel: str,
    recipient: str,
    queued_at: datetime,
    deadline: timedelta,
    fallback: bool = False,
) -> None:
    session.add(
        OutboxRow(
            notification_id=notification_id,
            channel=channel,
            recipient=recipient[:128],
            next_attempt_at=queued_at,
            deadline_at=queued_at + deadline,
            created_at=queued_at,
            fallback=fallback,
        )
    )


def copy_last_notification(
    session: Session,
    alert_id: int,
    *,
    notification_id: str,
    event: str,
    now: datetime,
    extra: Mapping[str, object],
    drop_extra: Iterable[str] = (),
    recipients: tuple[str, ...] | None = None,
    ack_url: str = "",
    alert_key: str | None = None,
) -> Notification | None:
    """The alert's last notification as a new one (not stored): new id, event and time, no
    actions, ``extra`` merged over its extra without the keys ``drop_extra``, and the key
    ``alert_key`` when given (the alert's public id: a notification stored before public ids
    carried the dedup key). It says exactly what the pages said and needs no catalog. None
    when the alert has no notification."""
    payload = session.execute(
        select(col(NotificationRow.payload))
        .where(col(NotificationRow.alert_id) == alert_id)
        .order_by(col(NotificationRow.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    if payload is None:
        return None
    base = notification_from_json(json.loads(payload))
    merged = {k: v for k, v in base.extra.items() if k not in set(drop_extra)}
    merged.update(extra)
    return replace(
        base,
        notification_id=notification_id,
        event=event,
        dedup_key=base.dedup_key if alert_key is None else alert_key,
        created_at=now.isoformat(),
        recipients=base.recipients if recipients is None else recipients,
        ack_url=ack_url,
        actions=(),
        extra=merged,
    )


def page_routes(
    session: Session, alert_id: int, default_deadline: timedelta
) -> tuple[list[tuple[str, str]], timedelta]:
    """Every (channel, recipient) the alert's pages were queued to, sorted, and the longest
    deadline they were given (``default_deadline`` when there were none)."""
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
            col(NotificationRow.alert_id) == alert_id,
            col(NotificationRow.event).in_(PAGE_EVENTS),
        )
    ).all()
    deadline = max(
        (deadline_at - created for _, _, created, deadline_at in routes),
        default=default_deadline,
    )
    return sorted({(c, r) for c, r, _, _ in routes}), deadline


def previous_routes(
    session: Session, alert_id: int | None
) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """(channel, recipient) pairs and JSON recipients of the alert's earlier pages (for the
    resolved notice: it goes to whoever was paged)."""
    pairs = session.execute(
        select(col(OutboxRow.channel), col(OutboxRow.recipient))
        .join(
            NotificationRow, col(NotificationRow.notification_id) == col(OutboxRow.notification_id)
        )
        .where(
            col(NotificationRow.alert_id) == alert_id,
            col(NotificationRow.event).in_(PAGE_EVENTS),
        )
        .distinct()
    ).all()
    payloads = session.execute(
        select(col(NotificationRow.payload)).where(
            col(NotificationRow.alert_id) == alert_id,
            col(NotificationRow.event).in_(PAGE_EVENTS),
        )
    ).scalars()
    recipients: dict[str, None] = {}
    for payload in payloads:
        recipients.update(dict.fromkeys(json.loads(payload).get("recipients", ())))
    return sorted((c, r) for c, r in pairs), tuple(recipients)


def routes_of(session: Session, notification_id: str) -> set[tuple[str, str]]:
    """The (channel, recipient) pairs a notification is already queued to."""
    return {
        (channel, recipient)
        for channel, recipient in session.execute(
            select(col(OutboxRow.channel), col(OutboxRow.recipient)).where(
                col(OutboxRow.notification_id) == notification_id
            )
        ).all()
    }
