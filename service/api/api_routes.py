"""The JSON API under /api/v1; every route declares the least role it needs.

``require_role`` (``service.api.principal``): ``viewer`` reads alerts, history, timelines and
the worklist; ``clinician`` acknowledges and resolves; ``pharmacist`` adds and ends silences;
``admin`` reads and reprocesses dead letters (raw HL7) and the OpenAPI document is for every
signed-in caller. The actor recorded for an action is the caller's identity (``token:<name>``
for a bearer token, the user for the trusted proxy); a ``who`` or ``author`` field in a body
is ignored.

Patients are addressed by ``ref`` (an opaque row id); the MRN goes in a request body
(``POST /patients/lookup``), never in a path or query string, so it stays out of proxy and
access logs.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.api.acting import ack_as, alert_analyte, resolve_as
from service.api.context import context_of
from service.api.dead_letter_query import (
    BulkReprocess,
    DeadLetterPage,
    FilterBody,
    dead_letter_query,
)
from service.api.principal import Principal, require_role
from service.api.views.alerts import alert_detail
from service.api.views.alerts import list_alerts as alert_list
from service.api.views.dead_letter_bulk import reprocess_many
from service.api.views.dead_letter_search import reason_counts
from service.api.views.dead_letter_search import search as dead_letter_search
from service.api.views.dead_letters import dead_letter_detail
from service.api.views.dead_letters import reprocess_dead_letter as reprocess
from service.api.views.patients import patient_ref_for
from service.api.views.timeline import patient_timeline as timeline_of
from service.api.views.timeline import timeline_doc
from service.api.views.worklist import worklist_doc
from service.ingest.pipeline import DatabaseUnavailable
from service.notify.ack_tokens import ACK_ACTIONS
from service.notify.acknowledge import UnknownAction
from service.notify.history import alert_history as history_of
from service.notify.lifecycle import AlertNotFound
from service.notify.reasons import actions_for
from service.notify.silences import SilenceError, SilenceView
from service.notify.silences import add_silence as add
from service.notify.silences import expire_silence as expire
from service.notify.silences import list_silences as active_silences

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_role("viewer"))])
CLINICIAN = Depends(require_role("clinician"))
PHARMACIST = Depends(require_role("pharmacist"))
ADMIN = Depends(require_role("admin"))

Status = Literal["open", "worklist", "resolved"]
SeverityName = Literal["info", "warning", "high", "critical"]


class AckRequest(BaseModel):
    action: str = Field(
        description="one of GET /api/v1/ack-actions?analyte=<the alert's analyte>: "
        + ", ".join(ACK_ACTIONS)
    )
    note: str = Field(default="", max_length=2000)


class PatientLookup(BaseModel):
    patient_id: str = Field(min_length=1, max_length=64, description="identifier from PID-3.1")
    authority: str = Field(
        default="",
        max_length=64,
        description="assigning authority (PID-3.4); may be left out when only one has the id",
    )


class Page(BaseModel):
    total: int
    items: list[dict[str, Any]]


@router.get("/openapi.json", include_in_schema=False)
def openapi_document(request: Request) -> JSONResponse:
    """The OpenAPI document of this API (behind the token like the rest)."""
    return JSONResponse(request.app.openapi())


@router.get("/alerts", response_model=Page, tags=["alerts"])
def list_alerts(
    request: Request,
    status: Status | None = None,
    severity: SeverityName | None = None,
    patient: int | None = Query(default=None, description="patient ref (not the MRN)"),
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> Page:
    """Alerts, newest first, filtered by status, severity and patient ref."""
    items, total = alert_list(
        context_of(request),
        status=status,
        severity=severity,
        patient_ref=patient,
        limit=limit,
        offset=offset,
    )
    return Page(total=total, items=items)


@router.get("/alerts/{alert_id}", tags=["alerts"])
def get_alert(request: Request, alert_id: int) -> dict[str, Any]:
    """One alert with its notifications and each one's deliveries and delivery attempts."""
    doc = alert_detail(context_of(request), alert_id)
    if doc is None:
        raise HTTPException(404, "no such alert")
    return doc


@router.post("/alerts/{alert_id}/ack", tags=["alerts"])
def ack_alert(
    request: Request, alert_id: int, body: AckRequest, who: Principal = CLINICIAN
) -> dict[str, Any]:
    """Acknowledge as the caller: what was done (a reason fit for the alert) and a note."""
    ctx = context_of(request)
    try:
        result = ack_as(ctx, who, alert_id, body.action, body.note, source="api")
    except AlertNotFound:
        raise HTTPException(404, "no such alert") from None
    except UnknownAction:
        fitting = actions_for(alert_analyte_or_none(request, alert_id))
        raise HTTPException(
            422, f"unknown action for this alert; expected one of {', '.join(fitting)}"
        ) from None
    doc = asdict(result)
    doc["acked_at"] = result.acked_at.isoformat() if result.acked_at else None
    return doc


def alert_analyte_or_none(request: Request, alert_id: int) -> str | None:
    try:
        return alert_analyte(context_of(request), alert_id)
    except AlertNotFound:
        return None


@router.post("/alerts/{alert_id}/resolve", tags=["alerts"])
def resolve_alert(request: Request, alert_id: int, who: Principal = CLINICIAN) -> dict[str, Any]:
    """Close an alert by hand, as the caller. No page goes out."""
    try:
        return resolve_as(context_of(request), who, alert_id)
    except AlertNotFound:
        raise HTTPException(404, "no such alert") from None


@router.get("/ack-actions", tags=["alerts"])
def ack_actions(
    analyte: str | None = Query(default=None, max_length=32, description="the alert's analyte"),
) -> dict[str, str]:
    """What a clinician can say was done, key → label; only the fitting ones for ``analyte``."""
    return dict(ACK_ACTIONS) if analyte is None else actions_for(analyte)


@router.get(
    "/dead-letters", response_model=DeadLetterPage, tags=["dead letters"], dependencies=[ADMIN]
)
def list_dead_letters(
    request: Request,
    search: FilterBody = Depends(dead_letter_query),  # noqa: B008
    limit: int = Query(default=100, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
) -> DeadLetterPage:
    """Dead letters, newest first, without the message text, with counts by reason class,
    status and commonest reason under the same filter."""
    ctx = context_of(request)
    where = search.to_filter(ctx.settings.hospital.zone)
    items, total = dead_letter_search(ctx.engine, where, limit=limit, offset=offset)
    return DeadLetterPage(total=total, items=items, counts=reason_counts(ctx.engine, where))


@router.post("/dead-letters/reprocess", tags=["dead letters"])
async def reprocess_dead_letters(
    request: Request, body: BulkReprocess, who: Principal = ADMIN
) -> dict[str, Any]:
    """Reprocess many after a fix: by ``ids`` or by ``filter`` (the list's query keys), at most
    MAX_PER_CALL rows a call (``remaining`` says how many more match). Rows no longer ``new``
    are skipped and reported; ``dry_run`` selects and counts without running anything."""
    ctx = context_of(request)
    where = body.filter.to_filter(ctx.settings.hospital.zone) if body.filter else None
    try:
        result = await asyncio.to_thread(
            reprocess_many, ctx, ctx.clock.now(), ids=body.ids, where=where, dry_run=body.dry_run
        )
    except ValueError as exc:  # TooMany, an empty filter
        raise HTTPException(422, str(exc)) from None
    except RuntimeError:
        raise HTTPException(503, "this process has no pipeline") from None
    except DatabaseUnavailable:
        raise HTTPException(503, "database unavailable") from None
    log.info(
        "dead letters reprocessed",
        extra={"by": who.name, "dry_run": body.dry_run, "selected": result.selected},
    )
    return result.doc()


@router.get("/dead-letters/{dl_id}", tags=["dead letters"], dependencies=[ADMIN])
def get_dead_letter(request: Request, dl_id: int) -> dict[str, Any]:
    """Reason, source topic/partition/offset and the raw HL7 (it may hold PHI)."""
    doc = dead_letter_detail(context_of(request), dl_id, include_raw=True)
    if doc is None:
        raise HTTPException(404, "no such dead letter")
    return doc


@router.post("/dead-letters/{dl_id}/reprocess", tags=["dead letters"])
async def reprocess_dead_letter(
    request: Request, dl_id: int, who: Principal = ADMIN
) -> dict[str, Any]:
    """Run the message through the pipeline again (after fixing configuration or code)."""
    ctx = context_of(request)
    try:
        result = await asyncio.to_thread(reprocess, ctx, dl_id, ctx.clock.now())
    except LookupError:
        raise HTTPException(404, "no such dead letter") from None
    except RuntimeError:
        raise HTTPException(503, "this process has no pipeline") from None
    except DatabaseUnavailable:
        raise HTTPException(503, "database unavailable") from None
    # The dead-letter row has no actor column: the audit line names who reprocessed it.
    log.info("dead letter reprocessed", extra={"dead_letter_id": dl_id, "by": who.name})
    return asdict(result)


@router.post("/patients/lookup", tags=["patients"])
def lookup_patient(request: Request, body: PatientLookup) -> dict[str, Any]:
    """The opaque ref of a patient, from the identifier in the body."""
    ref = patient_ref_for(context_of(request), body.patient_id, body.authority)
    if ref is None:
        raise HTTPException(404, "no such patient")
    return {"ref": ref}


@router.get("/patients/{ref}/timeline", tags=["patients"])
def patient_timeline(request: Request, ref: int) -> dict[str, Any]:
    """Phosphate, calcium, ionized calcium and albumin over time; orders and derived
    exposures (iron risk windows, antiresorptive effect intervals); alerts; thresholds."""
    ctx = context_of(request)
    timeline = timeline_of(ctx, ref, ctx.clock.now())
    if timeline is None:
        raise HTTPException(404, "no such patient")
    return timeline_doc(ctx, timeline)


@router.get("/worklist", tags=["patients"])
def worklist(request: Request) -> dict[str, Any]:
    """Open and worklist alerts, and patients at risk now with their monitoring labs."""
    ctx = context_of(request)
    return worklist_doc(ctx, ctx.clock.now(), limit=500)


class SilenceRequest(BaseModel):
    """What to silence (at least one of patient, unit, rule), who says so, why, how long."""

    patient_id: str = Field(
        default="", max_length=64, description="patient key: PID-3.1, then ^PID-3.4 if set"
    )
    unit: str = Field(default="", max_length=64, description="point of care, e.g. 4W")
    rule: str = Field(default="", max_length=64)
    reason: str = Field(min_length=1, max_length=2000)
    hours: float = Field(gt=0, le=24 * 30, description="how long the silence lasts")


def _silence_json(view: SilenceView) -> dict[str, Any]:
    doc = asdict(view)
    for key in ("created_at", "expires_at", "expired_at"):
        doc[key] = doc[key].isoformat() if doc[key] else None
    return doc


@router.get("/silences", tags=["silences"])
def list_silences(request: Request, include_expired: bool = False) -> list[dict[str, Any]]:
    """Active silences (all, with ``include_expired``)."""
    ctx = context_of(request)
    views = active_silences(ctx.engine, ctx.clock.now(), include_expired=include_expired)
    return [_silence_json(v) for v in views]


@router.post("/silences", status_code=201, tags=["silences"])
def add_silence(
    request: Request, body: SilenceRequest, who: Principal = PHARMACIST
) -> dict[str, Any]:
    """Mute pages for a patient, a unit or a rule, with an author, a reason and an expiry.

    Silenced notifications are still recorded (and a silenced alert's resolution too).
    """
    ctx = context_of(request)
    now = ctx.clock.now()
    try:
        view = add(
            ctx.engine,
            author=who.name,
            reason=body.reason,
            now=now,
            expires_at=now + timedelta(hours=body.hours),
            patient_id=body.patient_id,
            unit=body.unit,
            rule=body.rule,
        )
    except SilenceError as exc:
        raise HTTPException(422, str(exc)) from None
    return _silence_json(view)


@router.post("/silences/{silence_id}/expire", tags=["silences"])
def expire_silence(
    request: Request, silence_id: int, who: Principal = PHARMACIST
) -> dict[str, Any]:
    """End a silence now."""
    ctx = context_of(request)
    try:
        view = expire(ctx.engine, silence_id, ctx.clock.now())
    except SilenceError:
        raise HTTPException(404, "no such silence") from None
    # The silence row has no column for who ended it: the audit line names them.
    log.info("silence ended", extra={"silence_id": silence_id, "by": who.name})
    return _silence_json(view)


@router.get("/alerts/{alert_id}/history", tags=["alerts"])
def alert_history(request: Request, alert_id: int) -> list[dict[str, Any]]:
    """Every notification, delivery attempt, acknowledgement, escalation and resolution."""
    entries = history_of(context_of(request).engine, alert_id)
    if entries is None:
        raise HTTPException(404, "no such alert")
    return [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in asdict(e).items()}
        for e in entries
    ]
