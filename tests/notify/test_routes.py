"""Page identity and the fallback route (service.notify.routes): pure functions, no database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.identity import patient_key
from alerts.notification import Notification
from service.notify.delivery import load_team_routing
from service.notify.routes import fallback_routes, page_identity
from tests.notify.helpers import paging_settings, smtp, wctp, write_routing


def _notification(patient_id: str) -> Notification:
    return Notification(
        notification_id="n1",
        event="alert",
        rule="iron-antiresorptive-mineral",
        severity="critical",
        dedup_key="k1",
        patient_id=patient_id,
        patient_location="ICU/1/A",
        analyte="phosphate",
        value=0.9,
        unit="mg/dL",
        reference_range="2.5-4.5",
        observed_at="2026-01-01T00:00:00+00:00",
        iron=None,
        antiresorptive=None,
        recipients=("icu-1",),
        created_at="2026-01-01T00:00:00+00:00",
    )


MRN = patient_key("MRN123456", "HOSP")


@pytest.mark.parametrize(
    ("channel_type", "identity", "expected"),
    [
        # A pager, e-mail or webhook leaves the building: the setting applies.
        ("wctp", "masked", patient_key("*****3456", "HOSP")),
        ("smtp", "masked", patient_key("*****3456", "HOSP")),
        ("webhook", "location", ""),  # the location alone identifies the bed, not the person
        ("wctp", "full", MRN),
        # Channels that stay inside LabSentinel always carry the whole identifier.
        ("console", "masked", MRN),
        ("jsonl", "location", MRN),
        (None, "masked", MRN),  # a channel no longer configured: nothing to mask for
    ],
)
def test_page_identity(channel_type: str | None, identity: str, expected: str) -> None:
    shown = page_identity(_notification(MRN), channel_type, identity)
    assert shown.patient_id == expected
    assert shown.patient_location == "ICU/1/A"  # the location always travels


@pytest.mark.parametrize(
    ("identifier", "masked"),
    [
        ("1234", "1234"),  # four characters or fewer: nothing left to hide
        ("12", "12"),
        ("A1234567", "****4567"),
    ],
)
def test_masking_keeps_the_last_four(identifier: str, masked: str) -> None:
    shown = page_identity(_notification(patient_key(identifier, "")), "wctp", "masked")
    assert shown.patient_id == patient_key(masked, "")


def test_fallback_routes_skip_what_the_notification_already_has(tmp_path: Path) -> None:
    routing_file = write_routing(tmp_path / "routing.toml")
    channels = {"pager": wctp("http://127.0.0.1:9/wctp"), "email": smtp("127.0.0.1", 9)}
    settings = paging_settings(f"sqlite:///{tmp_path / 'x.db'}", routing_file, channels)
    paging = load_team_routing(settings, ["pager", "email"])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    everything = fallback_routes(paging.routing, set(), now)
    assert everything  # the pharmacy on-call and the pharmacy team's address, on email
    assert all(channel == "email" for channel, _ in everything)
    first = everything[0]
    assert fallback_routes(paging.routing, {first}, now) == everything[1:]
