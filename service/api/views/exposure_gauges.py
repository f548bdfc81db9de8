"""The active-exposure and at-risk gauges, refreshed from the database when /metrics is read."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import or_, select
from sqlmodel import Session, col

from service.api.context import ApiContext
from service.api.views.patients import exposures_of, orders_by_patient
from service.api.views.worklist import patients_at_risk
from service.db.models import Patient
from service.runtime import metrics

log = logging.getLogger(__name__)

_gauge_lock = threading.Lock()
_gauge_refreshed = {"at": -1e18}


def refresh_exposure_gauges(ctx: ApiContext, *, max_age_s: float = 0.0) -> None:
    """Set the active-exposure and at-risk gauges from the database, at most every
    ``max_age_s`` seconds. Blocks on the database; never raises (a scrape must not fail
    because of this: a failure is logged and counted as a failed ``exposure_refresh`` run)."""
    metrics.job_scheduled("exposure_refresh", max_age_s)
    with _gauge_lock:
        if time.monotonic() - _gauge_refreshed["at"] < max_age_s:
            return
        now = ctx.clock.now()
        counts = dict.fromkeys(metrics.EXPOSURE_CLASSES, 0)
        try:
            with Session(ctx.engine) as session:
                ids = list(
                    session.execute(
                        select(col(Patient.patient_id)).where(
                            or_(col(Patient.has_iron), col(Patient.has_antiresorptive))
                        )
                    ).scalars()
                )
                orders = orders_by_patient(session, ids)
            for patient_orders in orders.values():
                for e in exposures_of(ctx, patient_orders, now):
                    if e.drug_class in counts and e.start <= now <= e.end:
                        counts[e.drug_class] += 1
            at_risk = len(patients_at_risk(ctx, now))
        except Exception as exc:  # a scrape must never fail because of this
            log.warning("exposure gauges not refreshed", extra={"error": type(exc).__name__})
            metrics.job_run("exposure_refresh", ok=False)
            return
        for drug_class, count in counts.items():
            metrics.active_exposures.labels(drug_class).set(count)
        metrics.patients_at_risk.set(at_risk)
        metrics.job_run("exposure_refresh", ok=True)
        _gauge_refreshed["at"] = time.monotonic()
