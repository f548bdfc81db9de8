"""Who gets what: teams, notice targets, the fallback route and the identity a page carries.

Pure functions of the routing configuration (``alerts.routing``), a notification and a
time, except ``ordering_provider`` (one read of the alert's iron order). Nothing here
writes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime

from sqlalchemy import and_, select
from sqlmodel import Session, col

from alerts.identity import patient_key, split_patient_key
from alerts.monitoring import RULE_MONITORING
from alerts.notification import Notification
from alerts.routing import RoutingConfig, Subject
from service.db.models import Alert, MedicationOrderRow, Patient
from service.db.patients import PatientRecord
from service.notify.delivery import PAGING_TYPES


def page_identity(
    notification: Notification, channel_type: str | None, identity: str
) -> Notification:
    """``notification`` as a channel of ``channel_type`` may carry it under the
    ``paging.page_identity`` setting: ``masked`` keeps the identifier's last four characters
    (the authority says which hospital's), ``location`` drops it, ``full`` keeps it. Channels
    that stay inside LabSentinel (console, jsonl; None: unknown) always get it whole."""
    if channel_type not in PAGING_TYPES:
        return notification
    if identity == "masked":
        identifier, authority = split_patient_key(notification.patient_id)
        masked = "*" * max(len(identifier) - 4, 0) + identifier[-4:]
        return replace(notification, patient_id=patient_key(masked, authority))
    if identity == "location":
        return replace(notification, patient_id="")
    return notification


def fallback_routes(
    routing: RoutingConfig, already: Collection[tuple[str, str]], now: datetime
) -> list[tuple[str, str]]:
    """(channel, address) of the fallback route (the pharmacy on-call) at ``now`` that a
    failed notification is not already queued to."""
    return [route for route in routing.fallback_deliveries(now) if route not in already]


def alert_team(routing: RoutingConfig, row: Alert, patient: Patient | None) -> str:
    """The team of the first route matching the alert (rule, severity, unit, facility,
    service), else the fallback team."""
    subject = Subject(
        rule=row.rule,
        severity=row.severity,
        location=row.location,
        facility=patient.facility if patient else "",
        service=patient.service if patient else "",
    )
    return routing.route(subject)


def care_team(routing: RoutingConfig, patient: Patient | PatientRecord) -> str:
    """The team the patient's alerts route to (location, service), for its reminders."""
    team = routing.route(
        Subject(
            rule=RULE_MONITORING,
            severity="info",
            location=patient.location,
            facility=patient.facility,
            service=patient.service,
        )
    )
    return team if team in routing.teams else routing.fallback_team


def pharmacy_team(routing: RoutingConfig) -> str:
    """The pharmacy on-call: the routing fallback team (configs/routing.toml)."""
    return routing.fallback_team


def provider_id(provider: str) -> str:
    """The id part (XCN.1) of an ordering provider field (ORC-12)."""
    return provider.split("^", 1)[0].strip()


def notice_target(
    routing: RoutingConfig, team_id: str, provider: str, now: datetime
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(channel, address) deliveries and JSON recipients of a non-paging notice to a team
    and a prescriber: the team's ``notify`` addresses (``RoutingConfig.target`` for severity
    info) plus the prescriber's own address on those channels when routing knows them."""
    target = routing.target(team_id, "info", now)
    deliveries = list(target.deliveries)
    recipients = [team_id]
    person_id = routing.person_by_provider(provider_id(provider)) if provider else None
    if person_id is not None:
        contacts = routing.people[person_id].contacts
        deliveries += [(ch, contacts[ch]) for ch in routing.teams[team_id].notify if ch in contacts]
        recipients.append(person_id)
    return tuple(dict.fromkeys(deliveries)), tuple(dict.fromkeys(recipients))


def ordering_provider(session: Session, row: Alert) -> str:
    """ORC-12 id of the iron order that opened the alert's episode (latest dose ≤ the
    result), "" when none names one. One read; blocks on the database."""
    provider = session.execute(
        select(col(MedicationOrderRow.ordering_provider))
        .where(
            and_(
                col(MedicationOrderRow.patient_id) == row.patient_id,
                col(MedicationOrderRow.drug_class) == "iv_iron",
                col(MedicationOrderRow.ordering_provider) != "",
                col(MedicationOrderRow.dose_at) <= row.observed_at,
            )
        )
        .order_by(col(MedicationOrderRow.dose_at).desc())
        .limit(1)
    ).scalar_one_or_none()
    return (provider or "").split("^", 1)[0]
