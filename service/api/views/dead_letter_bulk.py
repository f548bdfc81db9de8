"""Reprocessing many dead letters at once, after a fix: by a list of ids or by a filter.

One call takes at most ``MAX_PER_CALL`` rows; a filter matching more takes the oldest and
reports how many are left, so an operator repeats the call (each call is bounded in time and
in what it can page). Only rows still ``new`` run: a row already ``reprocessed`` (or
``dead``) is skipped and reported, so a repeated call — or two operators at once — does not
run a message twice; the pipeline's claim on sending facility + MSH-10 catches the rest. A dry
run selects and counts exactly as the real call would and runs nothing.

Blocks on the database and the pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from service.api.context import ApiContext
from service.api.views.dead_letter_search import DeadLetterFilter, conditions, matching_ids
from service.api.views.dead_letters import reprocess_dead_letter
from service.db.models import DeadLetter

# Reprocessing runs each message through the pipeline (and may queue pages): 500 at a time
# keeps one call to seconds and its effect on the on-call phones reviewable.
MAX_PER_CALL = 500


class TooMany(ValueError):
    """More ids than one call may take."""


@dataclass
class BulkResult:
    dry_run: bool
    selected: int = 0  # rows that run (or would run)
    reprocessed: int = 0  # stored, ignored or duplicate: the row is now ``reprocessed``
    failed_again: int = 0  # dead-lettered again: the row stays ``new``
    notifications: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)  # id, status
    missing: list[int] = field(default_factory=list)
    remaining: int = 0  # matching ``new`` rows beyond this call's maximum
    results: list[dict[str, Any]] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        return asdict(self)


def reprocess_many(
    ctx: ApiContext,
    now: datetime,
    *,
    ids: list[int] | None = None,
    where: DeadLetterFilter | None = None,
    dry_run: bool = False,
    limit: int = MAX_PER_CALL,
) -> BulkResult:
    """Reprocess the ``new`` rows among ``ids`` or under ``where`` (one of them).

    Raises TooMany (more than ``limit`` ids), ValueError (neither or both given, an empty
    filter), RuntimeError (no pipeline, real run only) and ``DatabaseUnavailable``.
    """
    if (ids is None) == (where is None):
        raise ValueError("give either ids or a filter")
    limit = min(limit, MAX_PER_CALL)
    result = BulkResult(dry_run=dry_run)
    with Session(ctx.engine) as session:
        if ids is not None:
            if len(ids) > limit:
                raise TooMany(f"at most {limit} ids per call")
            wanted = list(dict.fromkeys(ids))
            found = dict(
                session.execute(
                    select(col(DeadLetter.id), col(DeadLetter.status)).where(
                        col(DeadLetter.id).in_(wanted)
                    )
                ).all()
            )
            result.missing = [i for i in wanted if i not in found]
            todo = [i for i in wanted if found.get(i) == "new"]
            result.skipped = [
                {"id": i, "status": found[i]} for i in wanted if i in found and found[i] != "new"
            ]
        else:
            assert where is not None
            if where.is_empty():
                raise ValueError("an empty filter would select every dead letter; narrow it")
            fresh = DeadLetterFilter(**{**where.__dict__, "status": "new"})
            todo = matching_ids(session, fresh, limit=limit)
            total_new = _count(session, fresh)
            result.remaining = max(total_new - len(todo), 0)
            if where.status in (None, "reprocessed", "dead"):
                others = session.execute(
                    select(col(DeadLetter.id), col(DeadLetter.status))
                    .where(*conditions(where), col(DeadLetter.status) != "new")
                    .order_by(col(DeadLetter.id))
                    .limit(limit)
                ).all()
                result.skipped = [{"id": int(i), "status": s} for i, s in others]
    result.selected = len(todo)
    if dry_run:
        return result
    for dl_id in todo:
        if _status(ctx, dl_id) != "new":  # taken by a concurrent call since we selected it
            result.skipped.append({"id": dl_id, "status": "reprocessed"})
            result.selected -= 1
            continue
        one = reprocess_dead_letter(ctx, dl_id, now)
        result.results.append(asdict(one))
        result.notifications += one.notifications
        if one.status == "reprocessed":
            result.reprocessed += 1
        else:
            result.failed_again += 1
    return result


def _count(session: Session, f: DeadLetterFilter) -> int:
    query = select(func.count()).select_from(DeadLetter).where(*conditions(f))
    return int(session.execute(query).scalar_one())


def _status(ctx: ApiContext, dl_id: int) -> str | None:
    with Session(ctx.engine) as session:
        return session.execute(
            select(col(DeadLetter.status)).where(col(DeadLetter.id) == dl_id)
        ).scalar_one_or_none()
