"""One patient over time: results, orders, derived exposures, alerts and at-risk episodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.catalog import CatalogError
from alerts.model import Exposure
from service.api.context import ApiContext
from service.api.views.alerts import alert_doc
from service.api.views.common import drug_name, identity, iso
from service.api.views.episodes import episode_summaries, patient_plan
from service.api.views.patients import exposures_of, patient_by_ref
from service.db.models import Alert, LabResultRow, MedicationOrderRow

TIMELINE_ANALYTES = ("phosphate", "calcium", "corrected_calcium", "ionized_calcium", "albumin")


@dataclass
class TimelinePoint:
    analyte: str
    observed_at: datetime
    value: float | None
    comparator: str
    unit: str
    canonical: float | None
    status: str
    reference_range: str


@dataclass
class Timeline:
    ref: int
    patient_id: str
    location: str
    results: list[TimelinePoint]
    orders: list[dict[str, Any]]
    exposures: list[Exposure]
    alerts: list[dict[str, Any]]
    now: datetime
    episodes: list[dict[str, Any]] = field(default_factory=list)


def _point(ctx: ApiContext, row: LabResultRow) -> TimelinePoint:
    canonical = None
    if row.value is not None:
        try:
            canonical = ctx.clinical.labs.to_canonical(row.analyte, row.value, row.unit)
        except (CatalogError, KeyError):
            canonical = None  # a unit the catalog no longer knows: shown, not charted
    return TimelinePoint(
        analyte=row.analyte,
        observed_at=row.observed_at,
        value=row.value,
        comparator=row.comparator,
        unit=row.unit,
        canonical=canonical,
        status=row.status,
        reference_range=row.reference_range,
    )


def patient_timeline(ctx: ApiContext, ref: int, now: datetime) -> Timeline | None:
    """The patient's timeline, None when no patient has this ref. Blocks on the database."""
    with Session(ctx.engine) as session:
        patient = patient_by_ref(session, ref)
        if patient is None:
            return None
        results = (
            session.execute(
                select(LabResultRow)
                .where(
                    col(LabResultRow.patient_id) == patient.patient_id,
                    col(LabResultRow.analyte).in_(TIMELINE_ANALYTES),
                )
                .order_by(col(LabResultRow.observed_at))
            )
            .scalars()
            .all()
        )
        orders = (
            session.execute(
                select(MedicationOrderRow)
                .where(col(MedicationOrderRow.patient_id) == patient.patient_id)
                .order_by(col(MedicationOrderRow.dose_at))
            )
            .scalars()
            .all()
        )
        alerts = (
            session.execute(
                select(Alert)
                .where(col(Alert.patient_id) == patient.patient_id)
                .order_by(col(Alert.observed_at))
            )
            .scalars()
            .all()
        )
        plan = patient_plan(ctx, session, patient, now)
        return Timeline(
            ref=ref,
            patient_id=patient.patient_id,
            location=patient.location,
            results=[_point(ctx, r) for r in results],
            orders=[
                {
                    "drug": drug_name(ctx, o.drug),
                    "drug_class": o.drug_class,
                    "order_control": o.order_control,
                    "route": o.route,
                    "dose_at": iso(o.dose_at),
                    "end_at": iso(o.end_at),
                    "administered": o.administered,
                }
                for o in orders
            ],
            exposures=exposures_of(ctx, orders, now),
            alerts=[alert_doc(ctx, a, ref) for a in alerts],
            now=now,
            episodes=episode_summaries(ctx, session, plan, now),
        )


def timeline_doc(ctx: ApiContext, timeline: Timeline) -> dict[str, Any]:
    return {
        "patient": {
            "ref": timeline.ref,
            **identity(timeline.patient_id),
            "location": timeline.location,
        },
        "results": [
            {
                "analyte": p.analyte,
                "observed_at": iso(p.observed_at),
                "value": p.value,
                "comparator": p.comparator,
                "unit": p.unit,
                "value_canonical": p.canonical,
                "status": p.status,
                "reference_range": p.reference_range,
            }
            for p in timeline.results
        ],
        "orders": timeline.orders,
        "exposures": [
            {
                "drug": drug_name(ctx, e.drug),
                "drug_class": e.drug_class,
                "start": iso(e.start),
                "end": iso(e.end),
            }
            for e in timeline.exposures
        ],
        "alerts": timeline.alerts,
        "episodes": timeline.episodes,
        "thresholds": {
            analyte: t.model_dump() for analyte, t in ctx.settings.clinical.thresholds.items()
        },
    }
