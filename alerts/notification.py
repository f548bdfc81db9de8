"""A notification as it leaves LabSentinel: the JSON shape of DESIGN.md's contract.

Built by the service from a stored alert and handed, unchanged, to every transport. Transports
render it for their medium (``alerts.render`` makes pager-sized text); the JSON-lines transport
writes ``to_json()`` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.identity import patient_key, split_patient_key


@dataclass(frozen=True)
class DrugRef:
    drug: str  # human-readable drug name, e.g. "ferric carboxymaltose"
    dose_at: str  # ISO 8601
    days_since: int | None = None  # iron only


@dataclass(frozen=True)
class Notification:
    notification_id: str  # stable per (alert, event, sequence): the transports' idempotency id
    event: str  # alert | update | escalation | resolved | reminder | advisory | acknowledged
    rule: str
    severity: str  # info | warning | high | critical
    # The stable key receivers group an alert's notifications by: an alert's random public id
    # (``Alert.public_id``), never the internal dedup key, which hashes the patient id.
    dedup_key: str
    patient_id: str  # the patient key: identifier and assigning authority (alerts.identity)
    patient_location: str
    analyte: str | None
    value: float | None
    unit: str
    reference_range: str
    observed_at: str | None  # ISO 8601
    iron: DrugRef | None
    antiresorptive: DrugRef | None
    recipients: tuple[str, ...]
    created_at: str  # ISO 8601, when the notification was decided
    ack_url: str = ""
    actions: tuple[str, ...] = ()  # suggested actions (CLINICAL.md "What a page should say")
    comparator: str = ""  # "<" when the lab reported "<x"
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"double_trouble": true}

    @property
    def pages(self) -> bool:
        return self.severity in ("high", "critical")

    def patient_json(self) -> dict[str, str]:
        """DESIGN.md's ``patient`` object: PID-3.1 as sent, its PID-3.4, the location."""
        identifier, authority = split_patient_key(self.patient_id)
        return {"id": identifier, "authority": authority, "location": self.patient_location}

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md contract keys (plus a few extra, never fewer)."""
        doc: dict[str, Any] = {
            "event": self.event,
            "rule": self.rule,
            "severity": self.severity,
            "patient": self.patient_json(),
            "analyte": self.analyte,
            "value": self.value,
            "unit": self.unit,
            "reference_range": self.reference_range,
            "observed_at": self.observed_at,
            "iron": _drug_json(self.iron, with_days=True),
            "antiresorptive": _drug_json(self.antiresorptive, with_days=False),
            "dedup_key": self.dedup_key,
            "recipients": list(self.recipients),
            "notification_id": self.notification_id,
            "created_at": self.created_at,
        }
        if self.comparator:
            doc["comparator"] = self.comparator
        if self.ack_url:
            doc["ack_url"] = self.ack_url
        if self.actions:
            doc["actions"] = list(self.actions)
        doc.update(self.extra)
        return doc


_KNOWN_KEYS = frozenset(
    {
        "event",
        "rule",
        "severity",
        "patient",
        "analyte",
        "value",
        "unit",
        "reference_range",
        "observed_at",
        "iron",
        "antiresorptive",
        "dedup_key",
        "recipients",
        "notification_id",
        "created_at",
        "comparator",
        "ack_url",
        "actions",
    }
)


def notification_from_json(doc: dict[str, Any]) -> Notification:
    """The inverse of ``Notification.to_json`` (the outbox stores notifications as JSON)."""
    patient = doc.get("patient") or {}
    return Notification(
        notification_id=doc["notification_id"],
        event=doc["event"],
        rule=doc["rule"],
        severity=doc["severity"],
        dedup_key=doc["dedup_key"],
        patient_id=patient_key(patient.get("id", ""), patient.get("authority", "")),
        patient_location=patient.get("location", ""),
        analyte=doc.get("analyte"),
        value=doc.get("value"),
        unit=doc.get("unit", ""),
        reference_range=doc.get("reference_range", ""),
        observed_at=doc.get("observed_at"),
        iron=_drug_ref(doc.get("iron")),
        antiresorptive=_drug_ref(doc.get("antiresorptive")),
        recipients=tuple(doc.get("recipients", ())),
        created_at=doc.get("created_at", ""),
        ack_url=doc.get("ack_url", ""),
        actions=tuple(doc.get("actions", ())),
        comparator=doc.get("comparator", ""),
        extra={k: v for k, v in doc.items() if k not in _KNOWN_KEYS},
    )


def _drug_ref(doc: dict[str, Any] | None) -> DrugRef | None:
    if not doc:
        return None
    return DrugRef(drug=doc["drug"], dose_at=doc["dose_at"], days_since=doc.get("days_since"))


def _drug_json(ref: DrugRef | None, *, with_days: bool) -> dict[str, Any] | None:
    if ref is None:
        return None
    doc: dict[str, Any] = {"drug": ref.drug, "dose_at": ref.dose_at}
    if with_days:
        doc["days_since"] = ref.days_since
    return doc
