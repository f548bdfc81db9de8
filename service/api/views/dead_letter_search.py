"""Searching the dead-letter store: one filter, the same SQL for the API, the pages and the CLI.

A filter narrows by status, reason class (``error_class``), message type (MSH-9), time of
arrival (``since`` inclusive, ``until`` exclusive), control id (MSH-10, exact) and ``q`` (a
case-insensitive piece of the reason text or the control id). Lists select the metadata
columns and the payload's length, never the payload itself: a search over thousands of
multi-megabyte rows must not pull them into memory. The message type is matched inside the
database on the payload's first bytes (the MSH segment), for the same reason.

Runs on SQLite and PostgreSQL alike; every function blocks on the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, LargeBinary, func, literal, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from alerts.oncall import parse_local
from service.api.views.common import iso
from service.db.models import DeadLetter

STATUSES = ("new", "reprocessed", "dead")
# error_class values the pipeline writes (service.ingest), plus the fallback file's class.
REASON_CLASSES = ("parse", "unit", "value", "size", "processing", "unrecorded")
# MSH-9 as typed by an operator: ORU, or ORU^R01. Letters and digits only, so the LIKE
# pattern built from it holds no wildcard.
_MESSAGE_TYPE = re.compile(r"^[A-Z0-9]{3}(\^[A-Z0-9]{3})?$")
# The MSH segment sits at the start; MSH-9 lies well inside its first bytes.
_HEADER_BYTES = 512
MAX_QUERY = 200


class FilterError(ValueError):
    """A filter value that cannot be used; the text names the key and what it expects."""


@dataclass(frozen=True)
class DeadLetterFilter:
    status: str | None = None
    reason: str | None = None  # the reason class (error_class)
    message_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    control_id: str | None = None
    q: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) in (None, "") for f in fields(self))

    def as_query(self) -> dict[str, str]:
        """The filter as query parameters (times in ISO 8601), for links and reports."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value not in (None, ""):
                out[f.name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


FILTER_KEYS = tuple(f.name for f in fields(DeadLetterFilter))


def build_filter(values: dict[str, str | None], zone: Any) -> DeadLetterFilter:
    """A filter from text values (query string, form, CLI); times without an offset are local
    to ``zone``. Raises FilterError naming the key."""
    unknown = sorted(set(values) - set(FILTER_KEYS))
    if unknown:
        raise FilterError(f"unknown filter key {unknown[0]!r}; one of {', '.join(FILTER_KEYS)}")
    clean = {k: (v.strip() if isinstance(v, str) else v) or None for k, v in values.items()}
    status, reason = clean.get("status"), clean.get("reason")
    if status is not None and status not in STATUSES:
        raise FilterError(f"status: one of {', '.join(STATUSES)}")
    if reason is not None and reason not in REASON_CLASSES:
        raise FilterError(f"reason: one of {', '.join(REASON_CLASSES)}")
    message_type = clean.get("message_type")
    if message_type is not None:
        message_type = message_type.upper()
        if not _MESSAGE_TYPE.match(message_type):
            raise FilterError("message_type: MSH-9 such as ORU or ORU^R01")
    times: dict[str, datetime | None] = {}
    for key in ("since", "until"):
        text = clean.get(key)
        try:
            times[key] = parse_local(text, zone) if text else None
        except ValueError:
            raise FilterError(f"{key}: an ISO 8601 time such as 2026-03-01T08:00") from None
    q = clean.get("q")
    if q is not None and len(q) > MAX_QUERY:
        raise FilterError(f"q: at most {MAX_QUERY} characters")
    return DeadLetterFilter(
        status=status,
        reason=reason,
        message_type=message_type,
        since=times["since"],
        until=times["until"],
        control_id=clean.get("control_id"),
        q=q,
    )


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def conditions(f: DeadLetterFilter) -> list[ColumnElement[bool]]:
    """The filter as SQL conditions on ``dead_letters``."""
    where: list[ColumnElement[bool]] = []
    if f.status:
        where.append(col(DeadLetter.status) == f.status)
    if f.reason:
        where.append(col(DeadLetter.error_class) == f.reason)
    if f.since is not None:
        where.append(col(DeadLetter.created_at) >= f.since)
    if f.until is not None:
        where.append(col(DeadLetter.created_at) < f.until)
    if f.control_id:
        where.append(col(DeadLetter.control_id) == f.control_id)
    if f.q:
        pattern = f"%{_like_escape(f.q.lower())}%"
        where.append(
            func.lower(col(DeadLetter.reason)).like(pattern, escape="\\")
            | func.lower(col(DeadLetter.control_id)).like(pattern, escape="\\")
        )
    if f.message_type:
        # MSH-9 follows a field separator; "ORU" matches ORU^R01, "ORU^R01" only that. Bytes
        # against bytes: bytea LIKE on PostgreSQL, a BLOB compared as text on SQLite.
        wanted = f.message_type if "^" in f.message_type else f"{f.message_type}^"
        header = func.substr(col(DeadLetter.raw), 1, _HEADER_BYTES)
        where.append(
            _BytePosition(header, literal(f"|{wanted}".encode("ascii"), LargeBinary())) > 0
        )
    return where


class _BytePosition(FunctionElement[int]):
    """1-based position of bytes (second argument) inside bytes (first), 0 when absent.
    SQLite's LIKE does not look inside a BLOB, and PostgreSQL has no ``instr``."""

    type = Integer()
    inherit_cache = True


@compiles(_BytePosition)
def _instr(element: _BytePosition, compiler: Any, **kw: Any) -> str:
    haystack, needle = list(element.clauses)
    return f"instr({compiler.process(haystack, **kw)}, {compiler.process(needle, **kw)})"


@compiles(_BytePosition, "postgresql")
def _position(element: _BytePosition, compiler: Any, **kw: Any) -> str:
    haystack, needle = list(element.clauses)
    return f"position({compiler.process(needle, **kw)} in {compiler.process(haystack, **kw)})"


# Everything a list shows, and the payload's size measured by the database.
_LIST_COLUMNS = (
    col(DeadLetter.id),
    col(DeadLetter.status),
    col(DeadLetter.error_class),
    col(DeadLetter.reason),
    col(DeadLetter.source),
    col(DeadLetter.topic),
    col(DeadLetter.partition),
    col(DeadLetter.offset),
    col(DeadLetter.control_id),
    func.length(col(DeadLetter.raw)).label("size"),
    col(DeadLetter.created_at),
    col(DeadLetter.reprocessed_at),
)


def search(
    engine: Engine, f: DeadLetterFilter, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """Newest first, metadata only. Returns (page, total matching)."""
    where = conditions(f)
    with Session(engine) as session:
        total = session.execute(
            select(func.count()).select_from(DeadLetter).where(*where)
        ).scalar_one()
        rows = session.execute(
            select(*_LIST_COLUMNS)
            .where(*where)
            .order_by(col(DeadLetter.id).desc())
            .limit(limit)
            .offset(offset)
        ).all()
    items = []
    for r in rows:
        doc = dict(r._mapping)
        doc["size"] = int(doc["size"] or 0)
        doc["created_at"] = iso(doc["created_at"])
        doc["reprocessed_at"] = iso(doc["reprocessed_at"])
        items.append(doc)
    return items, int(total)


def reason_counts(engine: Engine, f: DeadLetterFilter, *, top: int = 10) -> dict[str, Any]:
    """Counts under the filter by reason class and status, and the ``top`` commonest reason
    texts: what a fix would clear."""
    where = conditions(f)
    with Session(engine) as session:
        classes = session.execute(
            select(col(DeadLetter.error_class), func.count())
            .where(*where)
            .group_by(col(DeadLetter.error_class))
            .order_by(func.count().desc(), col(DeadLetter.error_class))
        ).all()
        statuses = session.execute(
            select(col(DeadLetter.status), func.count())
            .where(*where)
            .group_by(col(DeadLetter.status))
            .order_by(col(DeadLetter.status))
        ).all()
        reasons = session.execute(
            select(col(DeadLetter.error_class), col(DeadLetter.reason), func.count())
            .where(*where)
            .group_by(col(DeadLetter.error_class), col(DeadLetter.reason))
            .order_by(func.count().desc(), col(DeadLetter.reason))
            .limit(top)
        ).all()
    return {
        "classes": [{"reason": c, "count": int(n)} for c, n in classes],
        "statuses": [{"status": s, "count": int(n)} for s, n in statuses],
        "top_reasons": [{"reason": c, "text": t, "count": int(n)} for c, t, n in reasons],
    }


def matching_ids(session: Session, f: DeadLetterFilter, *, limit: int) -> list[int]:
    """Ids under the filter, oldest first (reprocessing keeps arrival order)."""
    return [
        int(i)
        for i in session.execute(
            select(col(DeadLetter.id))
            .where(*conditions(f))
            .order_by(col(DeadLetter.id))
            .limit(limit)
        ).scalars()
    ]
