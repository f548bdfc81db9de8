"""The dead-letter search as the API takes it: query parameters, the bulk-reprocess body and
the list's response model (``service.api.views.dead_letter_search`` does the searching).

A value the search cannot use is answered 422 with a sentence naming the key.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, Query
from pydantic import BaseModel, Field, model_validator

from service.api.views.dead_letter_bulk import MAX_PER_CALL
from service.api.views.dead_letter_search import (
    MAX_QUERY,
    REASON_CLASSES,
    STATUSES,
    DeadLetterFilter,
    FilterError,
    build_filter,
)

_TIME = "ISO 8601; without an offset, local to hospital.timezone"


class FilterBody(BaseModel):
    """The search keys (the list's query parameters)."""

    status: str | None = Field(default=None, description="one of " + ", ".join(STATUSES))
    reason: str | None = Field(
        default=None, description="reason class: one of " + ", ".join(REASON_CLASSES)
    )
    message_type: str | None = Field(default=None, description="MSH-9, e.g. ORU or ORU^R01")
    since: str | None = Field(default=None, description=f"arrived at or after ({_TIME})")
    until: str | None = Field(default=None, description=f"arrived before ({_TIME})")
    control_id: str | None = Field(default=None, max_length=199, description="MSH-10, exact")
    q: str | None = Field(
        default=None, max_length=MAX_QUERY, description="text in the reason or control id"
    )

    def to_filter(self, zone: Any) -> DeadLetterFilter:
        """Raises HTTPException 422 naming the key."""
        try:
            return build_filter(self.model_dump(), zone)
        except FilterError as exc:
            raise HTTPException(422, str(exc)) from None


def dead_letter_query(
    status: str | None = Query(default=None, description="one of " + ", ".join(STATUSES)),
    reason: str | None = Query(
        default=None, description="reason class: one of " + ", ".join(REASON_CLASSES)
    ),
    error_class: str | None = Query(default=None, description="the older name of reason"),
    message_type: str | None = Query(default=None, description="MSH-9: ORU or ORU^R01"),
    since: str | None = Query(default=None, description=f"arrived at or after ({_TIME})"),
    until: str | None = Query(default=None, description=f"arrived before ({_TIME})"),
    control_id: str | None = Query(default=None, max_length=199, description="MSH-10, exact"),
    q: str | None = Query(
        default=None, max_length=MAX_QUERY, description="text in the reason or control id"
    ),
) -> FilterBody:
    """``GET /dead-letters`` query parameters as a FastAPI dependency."""
    return FilterBody(
        status=status,
        reason=reason or error_class,
        message_type=message_type,
        since=since,
        until=until,
        control_id=control_id,
        q=q,
    )


class BulkReprocess(BaseModel):
    """Either ``ids`` or ``filter``; ``dry_run`` counts without running anything."""

    ids: list[int] | None = Field(
        default=None, max_length=MAX_PER_CALL, description=f"at most {MAX_PER_CALL} ids"
    )
    filter: FilterBody | None = Field(
        default=None, description=f"the list's search keys; the oldest {MAX_PER_CALL} run"
    )
    dry_run: bool = Field(default=False, description="select and count only")

    @model_validator(mode="after")
    def _one_selection(self) -> BulkReprocess:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


class DeadLetterPage(BaseModel):
    total: int
    items: list[dict[str, Any]]
    counts: dict[str, Any]
