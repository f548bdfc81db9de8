"""Notifications for the pager tests: one realistic default, overridable field by field."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alerts.notification import DrugRef, Notification

MRN = "MRN0048151623"
LOCATION = "Ward 7B bed 12"


def make_notification(**overrides: Any) -> Notification:
    """A critical phosphate alert 16 days after ferric carboxymaltose on denosumab."""
    base = Notification(
        notification_id="ntf-8c1f2a.alert.1",
        event="alert",
        rule="iron-antiresorptive-mineral",
        severity="critical",
        dedup_key="dk-3f9a0c5e7b21",
        patient_id=MRN,
        patient_location=LOCATION,
        analyte="phosphate",
        value=0.9,
        unit="mg/dL",
        reference_range="2.5-4.5",
        observed_at="2024-05-14T08:30:00+10:00",
        iron=DrugRef("ferric carboxymaltose", "2024-04-28T10:15:00+10:00", days_since=16),
        antiresorptive=DrugRef("denosumab", "2024-03-01T09:00:00+10:00"),
        recipients=("oncall-endo", "pharmacy"),
        created_at="2024-05-14T09:02:00+10:00",
        ack_url="https://labsentinel.example/ack/7Qx2",
        comparator="<",
    )
    return replace(base, **overrides)
