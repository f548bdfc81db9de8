"""Clinician pages: the ack page a page links to, the worklist and the patient timeline.

Server-rendered HTML with one small stylesheet and no script, so they are quick on a phone.
URLs carry alert ids, patient refs (opaque row ids) and signed ack tokens, never an MRN.
The worklist and timeline need a signed-in session (see ``service.api.auth``); the ack pages
need only the token in their link.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from service.api.auth import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    cookie_secure,
    make_session,
    safe_next,
    session_valid,
    token_valid,
)
from service.api.chart import render_chart
from service.api.context import context_of
from service.api.views.alerts import alert_doc, list_alerts
from service.api.views.common import drug_name
from service.api.views.timeline import patient_timeline
from service.api.views.worklist import patients_at_risk
from service.db.models import Alert
from service.notify.ack_links import ack_secret
from service.notify.ack_tokens import ACK_ACTIONS, InvalidAckToken, verify_ack_token
from service.notify.acknowledge import UnknownAction, acknowledge
from service.notify.lifecycle import AlertNotFound

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

ACK_REFUSALS = {
    "expired": (
        410,
        "This link has expired",
        "Acknowledgement links work for a limited time. The alert is still open in "
        "LabSentinel: sign in to the worklist to acknowledge it, or call the pharmacy "
        "on-call.",
    ),
    "other-alert": (
        403,
        "This link is for a different alert",
        "The alert this link was made for is no longer the one stored under its number. "
        "Open the newest page about this patient, or sign in to the worklist.",
    ),
    "forged": (
        403,
        "This link is not valid",
        "The link may have been cut off when it was copied. Open it again from the page you "
        "received, or sign in to the worklist to acknowledge the alert.",
    ),
    "malformed": (
        403,
        "This link is not valid",
        "The link may have been cut off when it was copied. Open it again from the page you "
        "received, or sign in to the worklist to acknowledge the alert.",
    ),
    "not-found": (
        404,
        "Alert not found",
        "No alert matches this link. Sign in to the worklist or call the pharmacy on-call.",
    ),
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

    response = templates.TemplateResponse(
        request,
        name,
        {
            "local": local,
            "signed_in": session_valid(ctx, request.cookies.get(SESSION_COOKIE)),
            **context,
        },
        status_code=status,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def _login_redirect(request: Request) -> RedirectResponse:
    target = quote(request.url.path, safe="/")
    return RedirectResponse(f"/login?next={target}", status_code=303)


def _signed_in(request: Request) -> bool:
    return session_valid(context_of(request), request.cookies.get(SESSION_COOKIE))


# -- sign in ------------------------------------------------------------------------------


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/worklist", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str = "/worklist") -> Response:  # noqa: A002
    return render(request, "login.html", {"next": safe_next(next), "error": ""})


@router.post("/login")
def login(
    request: Request,
    token: str = Form(default=""),
    next: str = Form(default="/worklist"),  # noqa: A002
) -> Response:
    ctx = context_of(request)
    if not token_valid(ctx.settings, token.strip()):
        log.warning("web sign-in refused")
        return render(
            request,
            "login.html",
            {"next": safe_next(next), "error": "That token is not valid."},
            status=401,
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        make_session(ctx, token.strip()),
        max_age=SESSION_TTL_S,
        httponly=True,
        secure=cookie_secure(ctx, request),
        samesite="lax",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- worklist and timeline ------------------------------------------------------------------


@router.get("/worklist")
def worklist(request: Request) -> Response:
    if not _signed_in(request):
        return _login_redirect(request)
    ctx = context_of(request)
    now = ctx.clock.now()
    open_alerts, _ = list_alerts(ctx, status="open", limit=200)
    backlog, _ = list_alerts(ctx, status="worklist", limit=200)
    at_risk = patients_at_risk(ctx, now)
    return render(
        request,
        "worklist.html",
        {"open_alerts": open_alerts, "backlog": backlog, "at_risk": at_risk, "now": now},
    )


@router.get("/patients/{ref}")
def timeline(request: Request, ref: int, days: int = 90) -> Response:
    if not _signed_in(request):
        return _login_redirect(request)
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


# -- acknowledgement links ------------------------------------------------------------------


def _claim(request: Request, token: str) -> tuple[Alert | None, str]:
    """The alert a token names, or the reason it is refused."""
    ctx = context_of(request)
    try:
        claim = verify_ack_token(ack_secret(ctx.settings), token, ctx.clock.now())
    except InvalidAckToken as exc:
        log.info("ack link refused", extra={"reason": exc.reason})
        return None, exc.reason
    with Session(ctx.engine) as session:
        alert = session.get(Alert, claim.alert_id)
    if alert is None:
        return None, "not-found"
    if alert.dedup_key != claim.dedup_key:
        log.info("ack link refused", extra={"reason": "other-alert", "alert_id": alert.id})
        return None, "other-alert"
    return alert, ""


def _refused(request: Request, reason: str) -> Response:
    status, title, text = ACK_REFUSALS.get(reason, ACK_REFUSALS["forged"])
    return render(request, "message.html", {"title": title, "text": text}, status)


def _ack_page(
    request: Request,
    token: str,
    alert: Alert,
    *,
    error: str = "",
    form: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    ctx = context_of(request)
    return render(
        request,
        "ack.html",
        {
            "a": alert_doc(ctx, alert, None),
            "token": token,
            "actions": ACK_ACTIONS,
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
    return _ack_page(request, token, alert)


@router.post("/ack/{token}")
def ack_submit(
    request: Request,
    token: str,
    action: str = Form(default=""),
    who: str = Form(default=""),
    note: str = Form(default=""),
) -> Response:
    alert, reason = _claim(request, token)
    if alert is None:
        return _refused(request, reason)
    form = {"action": action, "who": who.strip()[:128], "note": note.strip()[:2000]}
    if action not in ACK_ACTIONS or not form["who"]:
        error = "Choose what was done." if action not in ACK_ACTIONS else "Enter your name."
        return _ack_page(request, token, alert, error=error, form=form, status=422)
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
        return _ack_page(
            request, token, alert, error="Choose what was done.", form=form, status=422
        )
    return render(
        request,
        "ack_done.html",
        {"r": result, "label": ACK_ACTIONS.get(result.action, result.action)},
    )
