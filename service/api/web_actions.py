"""Acknowledge and resolve from the worklist and the timeline (signed-in clinicians).

Plain HTML forms (the pages run no script), POSTed to /actions/alerts/{id}/ack|resolve.
Cross-site requests are stopped twice: the session cookie is SameSite=Lax (a cross-site
POST does not carry it) and every form carries a CSRF token signed for this session
(``service.api.principal.check_csrf``). The actor recorded is the signed-in identity; the
form chooses only the reason (one that fits the alert's analyte) and a note. After the action
the browser goes back to the page it came from (a local path only).
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.api.acting import ack_as, resolve_as
from service.api.auth import safe_next
from service.api.context import context_of
from service.api.principal import Principal, check_csrf, require_role
from service.api.web_routes import render
from service.notify.acknowledge import UnknownAction
from service.notify.lifecycle import AlertNotFound

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

CLINICIAN = Depends(require_role("clinician"))


def _message(request: Request, title: str, text: str, status: int) -> Response:
    return render(request, "message.html", {"title": title, "text": text}, status)


@router.post("/actions/alerts/{alert_id}/ack")
def web_ack(
    request: Request,
    alert_id: int,
    action: str = Form(default="", max_length=64),
    note: str = Form(default="", max_length=2000),
    csrf: str = Form(default="", max_length=512),
    back: str = Form(default="/worklist", max_length=512),
    who: Principal = CLINICIAN,
) -> Response:
    check_csrf(request, who, csrf)
    try:
        ack_as(context_of(request), who, alert_id, action, note.strip(), source="web")
    except AlertNotFound:
        return _message(request, "Alert not found", "", 404)
    except UnknownAction:
        return _message(
            request, "Choose what was done", "Go back and pick one of the listed reasons.", 422
        )
    return RedirectResponse(safe_next(back), status_code=303)


@router.post("/actions/alerts/{alert_id}/resolve")
def web_resolve(
    request: Request,
    alert_id: int,
    csrf: str = Form(default="", max_length=512),
    back: str = Form(default="/worklist", max_length=512),
    who: Principal = CLINICIAN,
) -> Response:
    check_csrf(request, who, csrf)
    try:
        resolve_as(context_of(request), who, alert_id)
    except AlertNotFound:
        return _message(request, "Alert not found", "", 404)
    return RedirectResponse(safe_next(back), status_code=303)
