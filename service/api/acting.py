"""Acknowledge and resolve as a signed-in principal: what the API and the web forms share.

The actor recorded is always ``principal.name``; the caller chooses only the reason (one that
fits the alert's analyte, ``service.notify.reasons.actions_for``) and a free-text note.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from service.api.context import ApiContext
from service.api.principal import Principal
from service.api.views.alerts import resolve_alert
from service.db.models import Alert
from service.notify.acknowledge import AckResult, UnknownAction, acknowledge
from service.notify.lifecycle import AlertNotFound
from service.notify.reasons import actions_for


def alert_analyte(ctx: ApiContext, alert_id: int) -> str:
    """The analyte of ``alert_id``; raises ``AlertNotFound``. Blocks on the database."""
    with Session(ctx.engine) as session:
        alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    return alert.analyte


def ack_as(
    ctx: ApiContext, principal: Principal, alert_id: int, action: str, note: str, source: str
) -> AckResult:
    """Acknowledge ``alert_id`` as ``principal``.

    Raises ``AlertNotFound``, or ``UnknownAction`` when ``action`` is no reason for this
    alert's analyte. Blocks on the database.
    """
    if action not in actions_for(alert_analyte(ctx, alert_id)):
        raise UnknownAction(action)
    return acknowledge(
        ctx.engine,
        alert_id,
        who=principal.name,
        action=action,
        note=note,
        now=ctx.clock.now(),
        source=source,
    )


def resolve_as(ctx: ApiContext, principal: Principal, alert_id: int) -> dict[str, Any]:
    """Close ``alert_id`` by hand as ``principal``. Raises ``AlertNotFound``."""
    return resolve_alert(ctx, alert_id, who=principal.name, now=ctx.clock.now())
