"""What people and other processes did to alerts, read from the database when /metrics is read.

An ack, a resolve or a silence made with the CLI, the API of another replica or an ack link
served by another replica happens in another process: that process's own counters
(``labsentinel_acks_total``) never reach this one's /metrics. The database sees them all, so
at scrape time (at most every ``metrics.database_refresh_s``) this module reads:

- ``labsentinel_alert_actions_total{action, source}``: history events (``alert_events``)
  written by any process since this one first refreshed them, read incrementally by row id;
  ``source`` is the ack's own (link, api, cli), else ``person`` or ``system``. Every replica
  counts the same rows: aggregate across instances with ``max``, never ``sum``.
- ``labsentinel_open_alerts{severity, acknowledged}``: open alerts now.
- ``labsentinel_active_silences``: silences in force now.

No schema change and no write: only reads. Counted as the ``alert_gauges`` task.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from service.db.models import Alert, AlertEvent, Silence
from service.notify.acknowledge import ACK_SOURCES
from service.notify.lifecycle import SYSTEM_ACTOR
from service.runtime import metrics

log = logging.getLogger(__name__)

# The alert_events kinds that are actions on an alert (bounded; anything else is "other").
ACTIONS = (
    "acknowledged",
    "resolved",
    "escalation",
    "ack-timeout",
    "escalation-exhausted",
    "silenced",
    "corrective",
    "worklist",
    "delivery-failed",
)
SOURCES = (*ACK_SOURCES, "person", "system")
ACK_STATES = ("true", "false")
# Rows read per query: a first refresh after a long history reads only the newest id.
BATCH_ROWS = 5000

alert_actions = metrics.alert_actions
open_alerts = metrics.open_alerts
active_silences = metrics.active_silences


def prime() -> None:
    """Create the label sets at zero."""
    for action in (*ACTIONS, "other"):
        for source in SOURCES:
            alert_actions.labels(action, source)
    for severity in metrics.SEVERITIES:
        for state in ACK_STATES:
            open_alerts.labels(severity, state)


prime()


@dataclass
class _Cursor:
    last_id: int | None = None  # None until the first refresh took the baseline
    refreshed_at: float = -1e18


_lock = threading.Lock()
_cursors: weakref.WeakKeyDictionary[Engine, _Cursor] = weakref.WeakKeyDictionary()


def refresh_alert_gauges(engine: Engine, now: datetime, *, max_age_s: float = 0.0) -> None:
    """Read new history events and the open alerts and silences, at most every
    ``max_age_s`` seconds per database. Blocks on the database; never raises (a failure is
    logged and counted as a failed ``alert_gauges`` run; nothing read is lost, the next
    refresh reads from the same id)."""
    with _lock:
        cursor = _cursors.setdefault(engine, _Cursor())
        if time.monotonic() - cursor.refreshed_at < max_age_s:
            return
        try:
            with Session(engine) as session:
                counts = _new_actions(session, cursor)
                by_state = _open_alerts(session)
                silences = _active_silences(session, now)
        except Exception as exc:  # a scrape must never fail because of this
            log.warning("alert gauges not refreshed", extra={"error": type(exc).__name__})
            metrics.job_run("alert_gauges", ok=False)
            return
        for (action, source), count in counts.items():
            alert_actions.labels(action, source).inc(count)
        for severity in metrics.SEVERITIES:
            for state in ACK_STATES:
                open_alerts.labels(severity, state).set(by_state.get((severity, state), 0))
        active_silences.set(silences)
        metrics.job_run("alert_gauges", ok=True)
        cursor.refreshed_at = time.monotonic()


def _new_actions(session: Session, cursor: _Cursor) -> dict[tuple[str, str], int]:
    """Counts by (action, source) of the events after ``cursor.last_id``; moves the cursor.
    The first call only takes the newest id as the baseline (history before this process is
    not an increase)."""
    if cursor.last_id is None:
        newest = session.execute(select(func.max(col(AlertEvent.id)))).scalar_one_or_none()
        cursor.last_id = int(newest or 0)
        return {}
    counts: dict[tuple[str, str], int] = {}
    last_id = cursor.last_id
    while True:
        rows = session.execute(
            select(
                col(AlertEvent.id),
                col(AlertEvent.kind),
                col(AlertEvent.actor),
                col(AlertEvent.detail),
            )
            .where(col(AlertEvent.id) > last_id)
            .order_by(col(AlertEvent.id))
            .limit(BATCH_ROWS)
        ).all()
        for row_id, kind, actor, detail in rows:
            key = (kind if kind in ACTIONS else "other", _source(kind, actor, detail))
            counts[key] = counts.get(key, 0) + 1
            last_id = row_id
        if len(rows) < BATCH_ROWS:
            break
    cursor.last_id = last_id
    return counts


def _source(kind: str, actor: str, detail: str) -> str:
    if kind == "acknowledged":
        try:
            source = json.loads(detail or "{}").get("source")
        except (ValueError, AttributeError):
            source = None
        if source in ACK_SOURCES:
            return str(source)
    return "system" if actor == SYSTEM_ACTOR else "person"


def _open_alerts(session: Session) -> dict[tuple[str, str], int]:
    acked = col(Alert.acked_at).is_not(None)
    rows = session.execute(
        select(col(Alert.severity), acked, func.count())
        .where(col(Alert.status) == "open")
        .group_by(col(Alert.severity), acked)
    ).all()
    return {(severity, "true" if is_acked else "false"): n for severity, is_acked, n in rows}


def _active_silences(session: Session, now: datetime) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(Silence)
            .where(
                col(Silence.expired_at).is_(None),
                col(Silence.created_at) <= now,
                col(Silence.expires_at) > now,
            )
        ).scalar_one()
    )
