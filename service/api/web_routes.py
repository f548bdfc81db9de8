"""Clinician pages: the ack page a page links to, the worklist and the patient timeline.

Server-rendered HTML with one small stylesheet and no script, so they are quick on a phone.
URLs carry alert ids, patient refs (opaque row ids) and signed ack tokens, never an MRN.
The worklist and timeline need the viewer role (``service.api.principal``; sign-in is in
``service.api.signin_routes``); the ack pages are in ``service.api.ack_routes``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from service.api.chart import render_chart
from service.api.context import context_of
from service.api.principal import Principal, form_csrf_token, principal_of, require_role
from service.api.views.common import drug_name
from service.api.views.timeline import patient_timeline
from service.api.views.worklist import patients_at_risk
from service.api.views.worklist_order import ordered_alerts
from service.notify.reasons import actions_for

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

SECURITY_HEADERS = {
    # Tokens sit in ack URLs: never send them on as a Referer, never cache the pages.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; script-src 'none'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    ctx = context_of(request)
    zone = ctx.settings.hospital.zone
    templates = request.app.state.templates

    def local(moment: datetime | str | None, fmt: str = "%d %b %Y %H:%M") -> str:
        if moment is None:
            return ""
        if isinstance(moment, str):
            moment = datetime.fromisoformat(moment)
        return moment.astimezone(zone).strftime(fmt)

    principal = principal_of(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "local": local,
            "signed_in": principal is not None,
            "principal": principal,
            "csrf": form_csrf_token(request, principal) if principal else "",
            "ack_reasons": actions_for,
            **context,
        },
        status_code=status,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


VIEWER = Depends(require_role("viewer"))


# -- worklist and timeline ------------------------------------------------------------------


@router.get("/worklist")
def worklist(request: Request, _: Principal = VIEWER) -> Response:
    ctx = context_of(request)
    now = ctx.clock.now()
    open_alerts = ordered_alerts(ctx, status="open", limit=200)
    backlog = ordered_alerts(ctx, status="worklist", limit=200)
    at_risk = patients_at_risk(ctx, now)
    return render(
        request,
        "worklist.html",
        {"open_alerts": open_alerts, "backlog": backlog, "at_risk": at_risk, "now": now},
    )


@router.get("/patients/{ref}")
def timeline(request: Request, ref: int, days: int = 90, _: Principal = VIEWER) -> Response:
    ctx = context_of(request)
    days = min(max(days, 14), 730)
    data = patient_timeline(ctx, ref, ctx.clock.now())
    if data is None:
        return render(request, "message.html", {"title": "No such patient", "text": ""}, 404)
    names = {e.drug: drug_name(ctx, e.drug) for e in data.exposures}
    chart = render_chart(
        points=data.results,
        exposures=data.exposures,
        thresholds=dict(ctx.settings.clinical.thresholds),
        drug_names=names,
        now=data.now,
        zone=ctx.settings.hospital.zone,
        days=days,
    )
    doses = [e for e in data.exposures if e.drug_class in ("iv_iron", "antiresorptive")]
    return render(
        request,
        "timeline.html",
        {
            "t": data,
            "chart": chart,
            "doses": doses,
            "names": names,
            "days": days,
            "results": list(reversed(data.results)),
        },
    )
