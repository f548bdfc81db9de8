"""What notifications say: an alert's page or notice, an order-time advisory, a reminder.

Functions of stored state, the drug catalog and ``now`` (apart from a notice's random key):
they build ``Notification`` values (the JSON of DESIGN.md's pages) and store nothing (an
alert's page reads, in the alert's own session, whether its doses were given or only
ordered); recipients are filled in when a notification is routed and queued.

What leaves with a notification names the alert by its random public id, never by the dedup
key or anything it is made of that the rest of the page does not already say: the episode
start, one input of the key, is left out of notices (the iron's and the antiresorptive's
dose dates, which the clinician acts on, are there).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import object_session
from sqlmodel import col

from alerts.advisory import Advisory
from alerts.catalog import DrugCatalog
from alerts.escalation import NOT_GIVEN
from alerts.model import Exposure, StoredResult
from alerts.monitoring import RULE_MONITORING, AtRiskEpisode, Reminder
from alerts.notification import DrugRef, Notification
from service.db.models import Alert, MedicationOrderRow
from service.notify.delivery import Delivery
from service.notify.outbox import notification_id
from service.notify.routes import provider_id

REMINDER_ACTIONS = (
    "draw phosphate and calcium (total or ionized) now",
    "if low: repeat with magnesium and PTH; replace per local protocol",
)


def notice_key() -> str:
    """A notice's key (advisory, reminder): random, as an alert's public id is. The advisory
    or reminder row stored before the notice is built keeps it from being sent twice, so the
    key need not be derived; derived from patient and episode, it would let anyone who sees a
    notice try an MRN range against it."""
    return secrets.token_urlsafe(16)


def drug_name(drugs: DrugCatalog, key: str) -> str:
    drug = drugs.get(key)
    return drug.name if drug is not None else key


def build_notification(
    row: Alert, event: str, drugs: DrugCatalog, delivery: Delivery, now: datetime
) -> Notification:
    """The alert's ``event`` notification, numbered by the alert's current sequence, to the
    default recipients (routing replaces them). Its key and id come from the alert's random
    public id, never from the dedup key (which hashes the patient identifier)."""
    return Notification(
        notification_id=notification_id(row.public_id, event, row.notification_seq),
        event=event,
        rule=row.rule,
        severity=row.severity,
        dedup_key=row.public_id,
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
        extra={**({"double_trouble": True} if row.double_trouble else {}), **doses_given(row)},
    )


def doses_given(row: Alert) -> dict[str, bool]:
    """``iron_given`` / ``antiresorptive_given`` (True only) when a recorded administration
    (an RAS^O17 RXA whose RXA-20 is not NA or RE) confirms the dose the alert names; without
    one, the dose was only ordered and the page must not say "given".

    Reads the medication orders in the session the alert row belongs to (the caller's
    transaction); a row outside any session confirms nothing.
    """
    session = object_session(row)
    if session is None:
        return {}
    confirmed: dict[str, bool] = {}
    for key, drug, dose_at in (
        ("iron_given", row.iron_drug, row.iron_dose_at),
        ("antiresorptive_given", row.antiresorptive_drug, row.antiresorptive_dose_at),
    ):
        found = session.execute(
            select(col(MedicationOrderRow.id))
            .where(
                col(MedicationOrderRow.patient_id) == row.patient_id,
                col(MedicationOrderRow.drug) == drug,
                col(MedicationOrderRow.administered).is_(True),
                col(MedicationOrderRow.dose_at) == dose_at,
                col(MedicationOrderRow.completion_status).not_in(NOT_GIVEN),
            )
            .limit(1)
        ).first()
        if found is not None:
            confirmed[key] = True
    return confirmed


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
    key = notice_key()
    return Notification(
        notification_id=notification_id(key, "advisory", 1),
        event="advisory",
        rule=advisory.rule,
        severity="info",
        dedup_key=key,
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
    key = notice_key()
    return Notification(
        notification_id=notification_id(key, "reminder", 1),
        event="reminder",
        rule=RULE_MONITORING,
        severity="info",
        dedup_key=key,
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
            "ordering_provider": provider_id(reminder.ordering_provider),
        },
    )
