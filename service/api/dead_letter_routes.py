"""The dead-letter browser for admins, after Mirth's message browser: search, look, reprocess.

- ``GET /dead-letters``: a filter form (status, reason class, message type, arrival time,
  control id, text), the matching rows newest first in pages of ``PAGE_SIZE`` (metadata only,
  the search never reads payloads) and the counts by reason class and commonest reason.
- ``GET /dead-letters/{id}``: one row's metadata; the raw HL7 (which may hold PHI) only after
  an explicit "show raw" (``?raw=1``), and each such viewing is logged with the admin's name.
- ``POST /dead-letters/reprocess``: the form's filter, reprocessed in bulk after a fix. The
  first press shows what would run (a dry run); only the confirming press runs it. Bounded
  and idempotent as the API's bulk call is (``service.api.views.dead_letter_bulk``).

Every route needs the ``admin`` role (``service.api.principal.require_role``); the form
carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import Response

from service.api.context import context_of
from service.api.principal import Principal, check_csrf, require_role
from service.api.views.dead_letter_bulk import MAX_PER_CALL, reprocess_many
from service.api.views.dead_letter_search import (
    FILTER_KEYS,
    REASON_CLASSES,
    STATUSES,
    DeadLetterFilter,
    FilterError,
    build_filter,
    reason_counts,
    search,
)
from service.api.views.dead_letters import dead_letter_detail
from service.api.web_routes import render
from service.ingest.pipeline import DatabaseUnavailable

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
ADMIN = Depends(require_role("admin"))
PAGE_SIZE = 50


def _filter_of(request: Request, values: dict[str, str | None]) -> tuple[DeadLetterFilter, str]:
    """The filter and an error sentence ('' when the values are usable; then no filter)."""
    try:
        return build_filter(values, context_of(request).settings.hospital.zone), ""
    except FilterError as exc:
        return DeadLetterFilter(), str(exc)


def _browse(
    request: Request,
    values: dict[str, str | None],
    page: int,
    *,
    outcome: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    ctx = context_of(request)
    where, problem = _filter_of(request, values)
    page = max(page, 1)
    items, total = search(ctx.engine, where, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    query = where.as_query()
    return render(
        request,
        "dead_letters.html",
        {
            "items": items,
            "total": total,
            "page": page,
            "pages": max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1),
            "counts": reason_counts(ctx.engine, where),
            "form": {k: values.get(k) or "" for k in FILTER_KEYS},
            "problem": problem,
            "query": query,
            "link": lambda **more: "/dead-letters?" + urlencode({**query, **more}),
            "statuses": STATUSES,
            "reason_classes": REASON_CLASSES,
            "outcome": outcome,
            "max_per_call": MAX_PER_CALL,
        },
        status=status if not problem else 422,
    )


@router.get("/dead-letters")
def dead_letters_page(
    request: Request,
    status: str | None = None,
    reason: str | None = None,
    message_type: str | None = None,
    since: str | None = None,
    until: str | None = None,
    control_id: str | None = None,
    q: str | None = None,
    page: int = 1,
    _: Principal = ADMIN,
) -> Response:
    values = {
        "status": status,
        "reason": reason,
        "message_type": message_type,
        "since": since,
        "until": until,
        "control_id": control_id,
        "q": q,
    }
    return _browse(request, values, page)


@router.post("/dead-letters/reprocess")
async def reprocess_page(
    request: Request,
    csrf: str = Form(default=""),
    confirm: str = Form(default=""),
    who: Principal = ADMIN,
) -> Response:
    check_csrf(request, who, csrf)
    form = await request.form()
    values = {k: str(form.get(k) or "") or None for k in FILTER_KEYS}
    where, problem = _filter_of(request, values)
    if problem or where.is_empty():
        text = problem or "narrow the search first: an empty filter would select everything"
        return _browse(request, values, 1, outcome={"error": text}, status=422)
    ctx = context_of(request)
    dry_run = confirm != "yes"
    try:
        result = await asyncio.to_thread(
            reprocess_many, ctx, ctx.clock.now(), where=where, dry_run=dry_run
        )
    except RuntimeError:
        raise HTTPException(503, "this process has no pipeline") from None
    except DatabaseUnavailable:
        raise HTTPException(503, "database unavailable") from None
    log.info(
        "dead letters reprocessed from the browser",
        extra={"by": who.name, "dry_run": dry_run, "selected": result.selected},
    )
    return _browse(request, values, 1, outcome=result.doc())


@router.get("/dead-letters/{dl_id}")
def dead_letter_page(
    request: Request, dl_id: int, raw: int = 0, who: Principal = ADMIN
) -> Response:
    ctx = context_of(request)
    doc = dead_letter_detail(ctx, dl_id, include_raw=bool(raw))
    if doc is None:
        return render(
            request,
            "message.html",
            {"title": "Dead letter not found", "text": f"There is no dead letter {dl_id}."},
            status=404,
        )
    text = doc.pop("raw", None)
    if text is not None:
        # Who looked at a message that may hold PHI is part of the audit trail.
        log.info("dead letter raw viewed", extra={"dead_letter_id": dl_id, "by": who.name})
    segments = text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if text else []
    return render(
        request,
        "dead_letter.html",
        {"d": doc, "segments": [s for s in segments if s], "raw_shown": text is not None},
    )
