"""Dead letters as the API shows them, and reprocessing one through the pipeline.

Searching: ``dead_letter_search``; reprocessing many at once: ``dead_letter_bulk``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from service.api.context import ApiContext
from service.api.views.common import iso
from service.api.views.dead_letter_search import DeadLetterFilter, search
from service.db.models import DeadLetter
from service.ingest.pipeline import Incoming, Outcome
from service.runtime import metrics

log = logging.getLogger(__name__)


def dead_letter_doc(row: DeadLetter, *, include_raw: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "error_class": row.error_class,
        "reason": row.reason,
        "source": row.source,
        "topic": row.topic,
        "partition": row.partition,
        "offset": row.offset,
        "control_id": row.control_id,
        "size": len(row.raw),
        "created_at": iso(row.created_at),
        "reprocessed_at": iso(row.reprocessed_at),
    }
    if include_raw:
        # HL7 v2 is 8-bit text in the sender's charset; latin-1 never fails and keeps bytes.
        doc["raw"] = bytes(row.raw).decode("latin-1")
    return doc


def list_dead_letters(
    ctx: ApiContext,
    *,
    status: str | None = None,
    error_class: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, without the message text. Returns (page, total). Blocks on the database.
    (The full search: ``service.api.views.dead_letter_search``.)"""
    where = DeadLetterFilter(status=status, reason=error_class)
    return search(ctx.engine, where, limit=limit, offset=offset)


def dead_letter_detail(ctx: ApiContext, dl_id: int, *, include_raw: bool) -> dict[str, Any] | None:
    """One dead letter, None when there is none. Blocks on the database."""
    with Session(ctx.engine) as session:
        row = session.get(DeadLetter, dl_id)
        return dead_letter_doc(row, include_raw=include_raw) if row is not None else None


@dataclass(frozen=True)
class Reprocessed:
    id: int
    outcome: str
    reason: str
    notifications: int
    status: str


def reprocess_dead_letter(ctx: ApiContext, dl_id: int, now: datetime) -> Reprocessed:
    """Run a dead letter's message through the pipeline again (after a fix of config or code).

    Raises LookupError (no such row), RuntimeError (no pipeline in this process) and
    ``DatabaseUnavailable`` from the pipeline. The row becomes ``reprocessed`` when the message
    was stored, ignored or found to be a duplicate; when it fails again it stays ``new`` (the
    pipeline files the new failure under a ``reprocess:`` location of its own). Blocks on the
    database and the pipeline.
    """
    if ctx.pipeline is None:
        raise RuntimeError("no pipeline in this process")
    with Session(ctx.engine) as session:
        row = session.get(DeadLetter, dl_id)
        if row is None:
            raise LookupError(dl_id)
        raw = bytes(row.raw)
    result = ctx.pipeline.process(Incoming(raw=raw, source="reprocess"))
    message_type = metrics.normalise_message_type(result.message_type or "unparsed")
    metrics.messages_consumed.labels("reprocess", message_type, result.outcome.value).inc()
    for n in result.notifications:
        metrics.alerts_total.labels(n.rule, n.severity, n.event).inc()
    status = "new"
    if result.outcome is not Outcome.DEAD_LETTER:
        status = "reprocessed"
        with Session(ctx.engine) as session, session.begin():
            stored = session.get(DeadLetter, dl_id)
            if stored is not None:
                stored.status, stored.reprocessed_at = status, now
    else:
        metrics.dead_letters.labels(result.error_class or "processing").inc()
    log.info(
        "dead letter reprocessed",
        extra={
            "dead_letter_id": dl_id,
            "outcome": result.outcome.value,
            "control_id": result.control_id,
        },
    )
    return Reprocessed(
        id=dl_id,
        outcome=result.outcome.value,
        reason=result.reason,
        notifications=len(result.notifications),
        status=status,
    )
