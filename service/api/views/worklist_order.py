"""The worklist's order of alerts: most severe first, then the longest waiting.

Severity ranks critical, high, warning (the "moderate" tier), info; an unknown severity
last. Within a severity, alerts nobody has acknowledged come before acknowledged ones, and
the oldest (raised first) before newer: the one waiting longest for a clinician is on top.
Ties by id, so the order is total and the same on every database.

The order is applied in SQL (``ordered_alerts``), before the page limit, so a long list never
pushes the oldest critical alert off the page; ``worklist_key`` is the same order over plain
alert documents, the specification the SQL is tested against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlmodel import Session, col

from service.api.context import ApiContext
from service.api.views.alerts import alert_doc
from service.api.views.patients import refs
from service.db.models import Alert

SEVERITY_ORDER = ("critical", "high", "warning", "info")
_UNKNOWN = len(SEVERITY_ORDER)


def severity_rank(severity: str) -> int:
    """0 for critical ... 3 for info, 4 for anything else."""
    try:
        return SEVERITY_ORDER.index(severity)
    except ValueError:
        return _UNKNOWN


def worklist_key(doc: dict[str, Any]) -> tuple[int, bool, datetime, int]:
    """Sort key of an alert document (``alert_doc``): severity, acknowledged, raised, id."""
    return (
        severity_rank(doc["severity"]),
        doc.get("ack") is not None,
        datetime.fromisoformat(doc["created_at"]),
        int(doc["id"]),
    )


def ordered_alerts(ctx: ApiContext, *, status: str, limit: int) -> list[dict[str, Any]]:
    """Alerts of ``status`` in worklist order, at most ``limit``. Blocks on the database."""
    rank = case(
        *((col(Alert.severity) == name, index) for index, name in enumerate(SEVERITY_ORDER)),
        else_=_UNKNOWN,
    )
    acknowledged = case((col(Alert.acked_at).is_(None), 0), else_=1)
    with Session(ctx.engine) as session:
        rows = (
            session.execute(
                select(Alert)
                .where(col(Alert.status) == status)
                .order_by(rank, acknowledged, col(Alert.created_at), col(Alert.id))
                .limit(limit)
            )
            .scalars()
            .all()
        )
        by_key = refs(session, {r.patient_id for r in rows})
        return [alert_doc(ctx, r, by_key.get(r.patient_id)) for r in rows]
