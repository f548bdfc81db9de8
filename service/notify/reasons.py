"""Which acknowledgement reasons fit an alert: ``actions_for(analyte)``. Pure.

``ACK_ACTIONS`` (``service.notify.ack_tokens``) is every reason a clinician can give. Two of
them replace one mineral: "IV phosphate started" only answers a low phosphate, "IV calcium
started" only a low calcium (total, ionized or corrected). Offering the other would let a
tired clinician record a treatment that does not treat the alert, so the pages list, and the
API and the web forms accept, only the reasons fit for the alert's analyte. An alert about
neither mineral (the order-time advisory) gets neither IV replacement.
"""

from __future__ import annotations

from alerts.model import (
    ANALYTE_CALCIUM,
    ANALYTE_CORRECTED_CALCIUM,
    ANALYTE_IONIZED_CALCIUM,
    ANALYTE_PHOSPHATE,
)
from service.notify.ack_tokens import ACK_ACTIONS

# Reason → the analytes it may answer; reasons not named here fit every alert.
_ONLY_FOR: dict[str, frozenset[str]] = {
    "iv-phosphate": frozenset({ANALYTE_PHOSPHATE}),
    "iv-calcium": frozenset({ANALYTE_CALCIUM, ANALYTE_IONIZED_CALCIUM, ANALYTE_CORRECTED_CALCIUM}),
}


def actions_for(analyte: str | None) -> dict[str, str]:
    """The reasons (key → label, in ``ACK_ACTIONS`` order) that fit an alert on ``analyte``."""
    return {
        key: label
        for key, label in ACK_ACTIONS.items()
        if key not in _ONLY_FOR or (analyte or "") in _ONLY_FOR[key]
    }
