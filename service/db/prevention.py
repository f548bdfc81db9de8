"""Tables of the prevention and follow-through work: merges, advisories, reminders."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from service.db.models import _utc


class PatientAlias(SQLModel, table=True):
    """A prior identifier merged into a surviving one (ADT^A40/A18).

    Messages that still arrive under the prior identifier are filed under the surviving one.
    """

    __tablename__ = "patient_aliases"

    prior_id: str = Field(max_length=64, primary_key=True)
    surviving_id: str = Field(max_length=64, index=True)
    merged_at: datetime = _utc()  # type: ignore[assignment]
    control_id: str = Field(default="", max_length=199)


class AdvisoryRow(SQLModel, table=True):
    """An order-time advisory, once per iron episode (dedup key)."""

    __tablename__ = "advisories"

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=64, unique=True)
    patient_id: str = Field(max_length=64, index=True)
    episode_start: datetime = _utc()  # type: ignore[assignment]
    iron_drug: str = Field(max_length=64)
    antiresorptive_drug: str = Field(max_length=64)
    ordering_provider: str = Field(default="", max_length=64)
    status: str = Field(max_length=16)  # sent | worklist
    created_at: datetime = _utc()  # type: ignore[assignment]


class ReminderRow(SQLModel, table=True):
    """A monitoring reminder that was sent; its id makes a restart never send it twice."""

    __tablename__ = "reminders"

    id: str = Field(max_length=64, primary_key=True)
    patient_id: str = Field(max_length=64, index=True)
    episode_start: datetime = _utc()  # type: ignore[assignment]
    label: str = Field(max_length=32)
    sent_at: datetime = _utc()  # type: ignore[assignment]
    cleared_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
