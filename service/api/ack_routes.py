"""The page an ack link opens: ``GET`` and ``POST /ack/{token}``.

The token names the alert by its random public id only (``service.notify.ack_tokens``), so
the link says nothing about the patient. What the page shows and allows depends on who holds
it:

- not signed in: the patient's identity is masked (the identifier's last two characters and
  the point of care: enough for the clinician who got the page to recognise the patient,
  nothing for anyone else). Only an alert whose severity is in
  ``api.link_ack_without_signin`` (shipped: info and warning) can be acknowledged this way,
  under a typed name. For the others (high and critical: their ack stops escalation) the
  link redirects to ``/login?next=/ack/...`` and a post acknowledges nothing;
- signed in: the full identity, and a clinician (or higher role) acknowledges as the signed-in
  identity, never a typed name; the form carries the session's CSRF token.

An alert already acknowledged shows by whom and when, and cannot be acknowledged again
(``acknowledge`` is idempotent and says so).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from service.api.context import context_of
from service.api.principal import (
    Principal,
    check_csrf,
    form_csrf_token,
    login_location,
    principal_of,
)
from service.api.views.alerts import alert_doc
from service.api.views.common import identity
from service.api.web_routes import render
from service.db.models import Alert
from service.notify.ack_links import ack_secret
from service.notify.ack_tokens import ACK_ACTIONS, InvalidAckToken, verify_ack_token
from service.notify.acknowledge import UnknownAction, acknowledge
from service.notify.lifecycle import AlertNotFound
from service.notify.reasons import actions_for

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

ACK_ROLE = "clinician"

_NOT_VALID = (
    403,
    "This link is not valid",
    "The link may have been cut off when it was copied. Open it again from the page you "
    "received, or sign in to the worklist to acknowledge the alert.",
)
ACK_REFUSALS = {
    "expired": (
        410,
        "This link has expired",
        "Acknowledgement links work for a limited time. The alert is still open in "
        "LabSentinel: sign in to the worklist to acknowledge it, or call the pharmacy "
        "on-call.",
    ),
    "forged": _NOT_VALID,
    "malformed": _NOT_VALID,
    "not-found": (
        404,
        "Alert not found",
        "No alert matches this link. Sign in to the worklist or call the pharmacy on-call.",
    ),
    "role": (
        403,
        "Your role cannot acknowledge alerts",
        "Acknowledging needs the clinician role. Ask the pharmacy on-call to acknowledge it.",
    ),
}


def masked_patient(alert: Alert) -> dict[str, str]:
    """The identity a page shows before sign-in: ``…`` and the identifier's last two
    characters, and the point of care (the location's first part, no room or bed)."""
    identifier = identity(alert.patient_id)["id"]
    return {
        "id": "…" + identifier[-2:] if identifier else "",
        "authority": "",
        "location": alert.location.split("/", 1)[0],
    }


def link_alone(request: Request, alert: Alert) -> bool:
    """May the link alone (no sign-in) acknowledge ``alert``? Its current severity decides,
    so an alert raised to high after its link was made needs sign-in too."""
    return alert.severity in context_of(request).settings.api.link_ack_without_signin


def _claim(request: Request, token: str) -> tuple[Alert | None, str]:
    """The alert a token names, or the reason it is refused. Blocks on the database."""
    ctx = context_of(request)
    try:
        claim = verify_ack_token(ack_secret(ctx.settings), token, ctx.clock.now())
    except InvalidAckToken as exc:
        log.info("ack link refused", extra={"reason": exc.reason})
        return None, exc.reason
    with Session(ctx.engine) as session:
        alert = session.execute(
            select(Alert).where(col(Alert.public_id) == claim.public_id)
        ).scalar_one_or_none()
    if alert is None:
        log.info("ack link refused", extra={"reason": "not-found"})
        return None, "not-found"
    return alert, ""


def _refused(request: Request, reason: str) -> Response:
    status, title, text = ACK_REFUSALS.get(reason, _NOT_VALID)
    return render(request, "message.html", {"title": title, "text": text}, status)


def _sign_in(request: Request) -> RedirectResponse:
    return RedirectResponse(login_location(request), status_code=303)


def _ack_page(
    request: Request,
    token: str,
    alert: Alert,
    principal: Principal | None,
    *,
    error: str = "",
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    ctx = context_of(request)
    doc: dict[str, Any] = alert_doc(ctx, alert, None)
    if principal is None:
        doc["patient"] = masked_patient(alert)
    can_ack = principal.can(ACK_ROLE) if principal is not None else link_alone(request, alert)
    return render(
        request,
        "ack.html",
        {
            "a": doc,
            "token": token,
            "masked": principal is None,
            "me": principal,
            "can_ack": can_ack,
            "csrf": form_csrf_token(request, principal) if principal is not None else "",
            "login_url": login_location(request),
            "actions": actions_for(alert.analyte),
            "labels": ACK_ACTIONS,
            "error": error,
            "form": form or {"action": "", "who": "", "note": ""},
        },
        status,
    )


@router.get("/ack/{token}")
def ack_page(request: Request, token: str) -> Response:
    alert, reason = _claim(request, token)
    if alert is None:
        return _refused(request, reason)
    principal = principal_of(request)
    if principal is None and alert.acked_at is None and not link_alone(request, alert):
        return _sign_in(request)
    return _ack_page(request, token, alert, principal)


@router.post("/ack/{token}")
def ack_submit(
    request: Request,
    token: str,
    action: str = Form(default=""),
    who: str = Form(default=""),
    note: str = Form(default=""),
    csrf: str = Form(default=""),
) -> Response:
    alert, reason = _claim(request, token)
    if alert is None:
        return _refused(request, reason)
    principal = principal_of(request)
    if principal is not None:
        if not principal.can(ACK_ROLE):
            return _refused(request, "role")
        check_csrf(request, principal, csrf)  # raises 403 for a cross-site form
        who = principal.name
    elif not link_alone(request, alert):
        log.info("ack link refused", extra={"reason": "sign-in", "alert_id": alert.id})
        return _sign_in(request)
    form = {"action": action, "who": who.strip()[:128], "note": note.strip()[:2000]}
    fitting = actions_for(alert.analyte)
    if action not in fitting or not form["who"]:
        error = "Choose what was done." if action not in fitting else "Enter your name."
        return _ack_page(request, token, alert, principal, error=error, form=form, status=422)
    ctx = context_of(request)
    try:
        result = acknowledge(
            ctx.engine,
            alert.id or 0,
            who=form["who"],
            action=action,
            note=form["note"],
            now=ctx.clock.now(),
            source="link",
        )
    except AlertNotFound:
        return _refused(request, "not-found")
    except UnknownAction:
        error = "Choose what was done."
        return _ack_page(request, token, alert, principal, error=error, form=form, status=422)
    return render(
        request,
        "ack_done.html",
        {"r": result, "label": ACK_ACTIONS.get(result.action, result.action)},
    )
