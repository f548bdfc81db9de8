"""Silences: mute pages for a patient, a unit (point of care) and/or a rule until they expire.

A silenced alert is still stored, its notifications and resolution are still recorded in its
history; only deliveries are skipped (as in Alertmanager: a silenced alert's resolution must not
be lost). Every silence names its author and reason; expiring one early is recorded too.

Silences are written only here; ``active_silence`` is how the alert path and escalation ask
whether one applies (the mark on the alert is ``service.notify.lifecycle``'s).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from service.db.models import Alert, Silence


class SilenceError(ValueError):
    pass


@dataclass(frozen=True)
class SilenceView:
    id: int
    patient_id: str
    unit: str
    rule: str
    author: str
    reason: str
    created_at: datetime
    expires_at: datetime
    expired_at: datetime | None

    def active(self, now: datetime) -> bool:
        return self.expired_at is None and self.created_at <= now < self.expires_at


def _view(row: Silence) -> SilenceView:
    return SilenceView(
        id=row.id or 0,
        patient_id=row.patient_id,
        unit=row.unit,
        rule=row.rule,
        author=row.author,
        reason=row.reason,
        created_at=row.created_at,
        expires_at=row.expires_at,
        expired_at=row.expired_at,
    )


def add_silence(
    engine: Engine,
    *,
    author: str,
    reason: str,
    now: datetime,
    expires_at: datetime,
    patient_id: str = "",
    unit: str = "",
    rule: str = "",
) -> SilenceView:
    if not (patient_id or unit or rule):
        raise SilenceError("a silence needs a patient, a unit or a rule (it would mute all)")
    if not author.strip():
        raise SilenceError("a silence needs an author")
    if not reason.strip():
        raise SilenceError("a silence needs a reason")
    if expires_at <= now:
        raise SilenceError("the expiry must be in the future")
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = Silence(
            patient_id=patient_id.strip()[:64],
            unit=unit.strip()[:64],
            rule=rule.strip()[:64],
            author=author.strip()[:128],
            reason=reason.strip(),
            created_at=now,
            expires_at=expires_at,
        )
        session.add(row)
        session.flush()
        return _view(row)


def list_silences(
    engine: Engine, now: datetime, *, include_expired: bool = False
) -> list[SilenceView]:
    with Session(engine) as session:
        rows = session.execute(select(Silence).order_by(Silence.id)).scalars().all()  # type: ignore[arg-type]
        views = [_view(r) for r in rows]
    return views if include_expired else [v for v in views if v.active(now)]


def expire_silence(engine: Engine, silence_id: int, now: datetime) -> SilenceView:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.get(Silence, silence_id)
        if row is None:
            raise SilenceError(f"no silence {silence_id}")
        if row.expired_at is None and row.expires_at > now:
            row.expired_at = now
        return _view(row)


def active_silence(session: Session, row: Alert, now: datetime) -> Silence | None:
    """The newest silence matching the alert's patient, unit (point of care) and rule at
    ``now``, or None. One read in the caller's session."""
    unit = row.location.split("/", 1)[0]
    return (
        session.execute(
            select(Silence)
            .where(
                col(Silence.expired_at).is_(None),
                col(Silence.created_at) <= now,
                col(Silence.expires_at) > now,
                or_(col(Silence.patient_id) == "", col(Silence.patient_id) == row.patient_id),
                or_(col(Silence.unit) == "", col(Silence.unit) == unit),
                or_(col(Silence.rule) == "", col(Silence.rule) == row.rule),
            )
            .order_by(col(Silence.id).desc())
            .limit(1)
        )
        .scalars()
        .first()
    )
