"""A notification as it leaves LabSentinel: the JSON shape of DESIGN.md's contract.

Built by the service from a stored alert and handed, unchanged, to every transport. Transports
render it for their medium (``alerts.render`` makes pager-sized text); the JSON-lines transport
writes ``to_json()`` as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    dedup_key: str
    patient_id: str
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

    def to_json(self) -> dict[str, Any]:
        """The DESIGN.md contract keys (plus a few extra, never fewer)."""
        doc: dict[str, Any] = {
            "event": self.event,
            "rule": self.rule,
            "severity": self.severity,
            "patient": {"id": self.patient_id, "location": self.patient_location},
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


def _drug_json(ref: DrugRef | None, *, with_days: bool) -> dict[str, Any] | None:
    if ref is None:
        return None
    doc: dict[str, Any] = {"drug": ref.drug, "dose_at": ref.dose_at}
    if with_days:
        doc["days_since"] = ref.days_since
    return doc
