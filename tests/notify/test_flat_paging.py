"""The flat paging (no ``routing.config``): what bootstrap wires, and that it only fans the
default channels out to the default recipients. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from alerts.notification import Notification
from service.bootstrap import build_delivery, channel_settings
from service.db.models import Alert
from service.notify.delivery import FlatPaging
from service.notify.escalation import paging_for
from service.runtime.settings import Settings, load_settings

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _settings() -> Settings:
    return load_settings(
        overrides={
            "channels": {"console": {"type": "console"}, "audit": {"type": "console"}},
            "routing": {
                "config": "",
                "default_channels": ["console", "audit"],
                "default_recipients": ["pharmacy-on-call", "duty-pharmacist"],
            },
            "paging": {"page_identity": "masked"},
            "logging": {"format": "text"},
        }
    )


def _notification() -> Notification:
    return Notification(
        notification_id="n1",
        event="alert",
        rule="iron-antiresorptive-mineral",
        severity="critical",
        dedup_key="k1",
        patient_id="A1234567",
        patient_location="ICU/1/A",
        analyte="phosphate",
        value=0.9,
        unit="mg/dL",
        reference_range="2.5-4.5",
        observed_at=NOW.isoformat(),
        iron=None,
        antiresorptive=None,
        recipients=("someone",),
        created_at=NOW.isoformat(),
    )


def test_no_routing_file_wires_the_flat_paging() -> None:
    settings = _settings()
    delivery = build_delivery(settings, channel_settings(settings, None))
    deadline = timedelta(seconds=settings.dispatcher.deadline_s)
    assert delivery.paging == FlatPaging(
        ("console", "audit"), ("pharmacy-on-call", "duty-pharmacist"), deadline
    )
    # Commands that run without the application see the same kind of paging.
    assert isinstance(paging_for(settings), FlatPaging)


def test_flat_paging_sends_every_default_channel_to_every_default_recipient() -> None:
    paging = FlatPaging(("console", "audit"), ("a", "b"), timedelta(minutes=5))
    notification = _notification()
    with Session() as session:
        addressed = paging.address_alert(
            session, Alert(), notification, now=NOW, queued_at=NOW, worklist=False
        )
        # No fallback route and no escalation without routing.
        assert paging.queue_fallback(session, "n1", NOW) == []
    # An alert's notification keeps the recipients it was built with and gets no ack link.
    assert addressed.notification == notification
    assert list(addressed.deliveries) == [
        ("console", "a"),
        ("console", "b"),
        ("audit", "a"),
        ("audit", "b"),
    ]
    assert addressed.audit_channels == () and addressed.deadline == timedelta(minutes=5)
    # A notice (advisory, reminder) goes to the default recipients, whatever the team.
    notice = paging.address_notice(notification, "", "1234^DOC", NOW)
    assert notice.notification.recipients == ("a", "b")
    assert list(notice.deliveries) == list(addressed.deliveries)
    assert paging.pharmacy_team() == "" and paging.teams == ()
    # Identity is never masked without routing, whatever paging.page_identity says.
    assert paging.for_channel(notification, "console") is notification
