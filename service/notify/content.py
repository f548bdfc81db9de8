"""What notifications say: an alert's page or notice, an order-time advisory, a reminder.

Pure functions of stored state, the drug catalog and ``now``: they build ``Notification``
values (the JSON of DESIGN.md's pages) and store nothing; recipients are filled in when a
notification is routed and queued.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from alerts.advisory import Advisory
from alerts.catalog import DrugCatalog
from alerts.model import Exposure, StoredResult
from alerts.monitoring import RULE_MONITORING, AtRiskEpisode, Reminder
from alerts.notification import DrugRef, Notification
from service.db.models import Alert
from service.notify.delivery import Delivery
from service.notify.outbox import notification_id
from service.notify.routes import provider_id

REMINDER_ACTIONS = (
    "draw phosphate and calcium (total or ionized) now",
    "if low: repeat with magnesium and PTH; replace per local protocol",
)


def drug_name(drugs: DrugCatalog, key: str) -> str:
    drug = drugs.get(key)
    return drug.name if drug is not None else key


def build_notification(
    row: Alert, event: str, drugs: DrugCatalog, delivery: Delivery, now: datetime
) -> Notification:
    """The alert's ``event`` notification, numbered by the alert's current sequence, to the
    default recipients (routing replaces them)."""
    return Notification(
        notification_id=notification_id(row.dedup_key, event, row.notification_seq),
        event=event,
        rule=row.rule,
        severity=row.severity,
        dedup_key=row.dedup_key,
        patient_id=row.patient_id,
        patient_location=row.location,
        analyte=row.analyte,
        value=row.value,
        unit=row.unit,
        reference_range=row.reference_range,
        observed_at=row.observed_at.isoformat(),
        iron=DrugRef(
            drug=drug_name(drugs, row.iron_drug),
            dose_at=row.iron_dose_at.isoformat(),
            days_since=row.days_since_iron,
        ),
        antiresorptive=DrugRef(
            drug=drug_name(drugs, row.antiresorptive_drug),
            dose_at=row.antiresorptive_dose_at.isoformat(),
        ),
        recipients=delivery.recipients,
        created_at=now.isoformat(),
        comparator=row.comparator,
        extra={"double_trouble": True} if row.double_trouble else {},
    )


def as_worklist_notice(notification: Notification, row: Alert) -> Notification:
    """The notice of a worklist finding: severity ``info`` so that no route pages it; the
    severity it would have paged with, and why it did not, travel beside it."""
    return replace(
        notification,
        severity="info",
        extra={
            **notification.extra,
            "worklist": True,
            "finding_severity": row.severity,
            "reason": "result already older than the backfill limit when found",
        },
    )


def _drug_ref(drugs: DrugCatalog, exposure: Exposure, now: datetime, *, iron: bool) -> DrugRef:
    days = (now - exposure.start).days if iron and now >= exposure.start else None
    return DrugRef(
        drug=drug_name(drugs, exposure.drug), dose_at=exposure.start.isoformat(), days_since=days
    )


def _result_doc(result: StoredResult | None, lookback_days: int) -> dict[str, Any]:
    if result is None:
        return {"value": None, "note": f"none in the last {lookback_days} days"}
    return {
        "analyte": result.analyte,
        "value": result.value,
        "comparator": result.comparator,
        "unit": result.unit,
        "observed_at": result.observed_at.isoformat(),
    }


def advisory_notification(
    advisory: Advisory, drugs: DrugCatalog, location: str, now: datetime
) -> Notification:
    """The ``advisory`` notification of one advisory (severity info: never a page)."""
    iron = drug_name(drugs, advisory.iron.drug)
    anti = drug_name(drugs, advisory.antiresorptive.drug)
    interaction = (
        f"IV {iron} with {anti} in effect: risk of severe hypophosphatemia and hypocalcemia, "
        "nadir about 2 weeks after the iron (CLINICAL.md; Stokes et al., 'Double Trouble')"
    )
    return Notification(
        notification_id=notification_id(advisory.dedup_key, "advisory", 1),
        event="advisory",
        rule=advisory.rule,
        severity="info",
        dedup_key=advisory.dedup_key,
        patient_id=advisory.patient_id,
        patient_location=location,
        analyte=None,
        value=None,
        unit="",
        reference_range="",
        observed_at=None,
        iron=_drug_ref(drugs, advisory.iron, now, iron=True),
        antiresorptive=_drug_ref(drugs, advisory.antiresorptive, now, iron=False),
        recipients=(),
        created_at=now.isoformat(),
        actions=advisory.options,
        extra={
            "interaction": interaction,
            "phosphate": _result_doc(advisory.phosphate, advisory.lookback_days),
            "calcium": _result_doc(advisory.calcium, advisory.lookback_days),
            "episode_start": advisory.episode_start.isoformat(),
            "iron_risk": advisory.iron_risk,
            "ordering_provider": provider_id(advisory.ordering_provider),
            "prescribers": [provider_id(p) for p in advisory.prescribers],
        },
    )


def reminder_notification(
    reminder: Reminder,
    episode: AtRiskEpisode | None,
    drugs: DrugCatalog,
    location: str,
    now: datetime,
) -> Notification:
    """The ``reminder`` notification of a monitoring point that is due (severity info)."""
    iron = anti = None
    if episode is not None:
        iron = _drug_ref(drugs, episode.doses[0], now, iron=True)
        anti = _drug_ref(drugs, episode.trigger_antiresorptive, now, iron=False)
    return Notification(
        notification_id=notification_id(reminder.id, "reminder", 1),
        event="reminder",
        rule=RULE_MONITORING,
        severity="info",
        dedup_key=reminder.id,
        patient_id=reminder.patient_id,
        patient_location=location,
        analyte=None,
        value=None,
        unit="",
        reference_range="",
        observed_at=None,
        iron=iron,
        antiresorptive=anti,
        recipients=(),
        created_at=now.isoformat(),
        actions=REMINDER_ACTIONS,
        extra={
            "reminder": {
                "label": reminder.label,
                "due_at": reminder.due_at.isoformat(),
                "window": [reminder.window[0].isoformat(), reminder.window[1].isoformat()],
                "missing": list(reminder.missing),
                "reason": reminder.reason,
            },
            "episode_start": reminder.episode_start.isoformat(),
            "ordering_provider": provider_id(reminder.ordering_provider),
        },
    )
