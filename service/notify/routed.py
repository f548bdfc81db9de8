"""Paging under a routing file (``RoutedPaging``), and the one choice of a ``Paging``.

``build_paging`` and ``paging_for`` return ``RoutedPaging`` when ``routing.config`` names a
routing file and the flat default (``service.notify.delivery.FlatPaging``) when it is empty;
bootstrap calls ``build_paging`` once and hands the result to the pipeline and dispatcher.

Under routing (``alerts.routing``), each alert notification is routed: a new alert gets a
team (and keeps it: an incident keeps the policy it started with), high/critical go to the
team's current escalation tier over its paging channels, warnings to the team's non-paging
channel or the worklist; the audit channels (``routing.default_channels``, ``--pages-out``)
get every notification once, addressed to the team. A matching silence records the
notification and the alert's history but delivers nothing. Every page carries its signed ack
link. Notices (advisories, reminders) go to a team's ``notify`` addresses and the
prescriber. A delivery failed for good is queued again on the fallback route (the pharmacy
on-call); paging channels carry as much patient identity as ``paging.page_identity`` allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from alerts.notification import Notification
from alerts.routing import RoutingConfig
from service.db.models import Alert, Patient
from service.db.patients import PatientRecord
from service.notify import escalation_steps, lifecycle, outbox, routes
from service.notify import metrics as paging_metrics
from service.notify.ack_links import ack_link
from service.notify.delivery import (
    PAGE_EVENTS,
    Addressed,
    EscalationReport,
    FlatPaging,
    Paging,
    Route,
    TeamRouting,
    load_team_routing,
)
from service.notify.silences import active_silence
from service.runtime.settings import Settings


class RoutedPaging:
    """``Paging`` under a routing file (see the module doc)."""

    def __init__(self, config: TeamRouting) -> None:
        # Replaced whole by a reload (service.notify.reload): one attribute, so a reader
        # sees the old configuration or the new one, never half of each.
        self.config = config

    @property
    def routing(self) -> RoutingConfig:
        return self.config.routing

    @property
    def teams(self) -> tuple[str, ...]:
        return tuple(self.routing.teams)

    def track_alert(
        self,
        session: Session,
        row: Alert,
        event: str,
        *,
        notified: bool,
        worklist: bool,
        now: datetime,
    ) -> None:
        """A resolution goes in the alert's history; an alert or update routes the alert,
        marks its silence and starts paging a high or critical one that is not silenced
        (a worklist finding never pages)."""
        if event == "resolved":
            detail = {"notified": notified}
            lifecycle.record_event(session, row.id or 0, "resolved", now, detail=detail)
            return
        if event not in ("alert", "update"):
            return
        self._route(session, row, first=event == "alert")
        silenced = _mark_silence(session, row, now)
        if event == "alert":
            lifecycle.reset_escalation(session, row)
        pages = row.severity in ("high", "critical") and not worklist
        if pages and not silenced:
            lifecycle.start_paging(session, row, now)

    def address_alert(
        self,
        session: Session,
        row: Alert,
        notification: Notification,
        *,
        now: datetime,
        queued_at: datetime,
        worklist: bool,
    ) -> Addressed:
        """A resolution goes where the alert's notifications went; an alert or update to
        the team's current tier (a worklist notice to its non-paging channel) with its ack
        link. A silenced alert's notification is recorded in its history and goes nowhere."""
        event = notification.event
        deliveries: list[Route]
        if event == "resolved":
            deliveries, recipients = outbox.previous_routes(session, row.id)
        else:
            deliveries, recipients = self._target(session, row, notification, now)
        link = ""
        if event in PAGE_EVENTS and row.id is not None and not worklist:
            link = ack_link(self.config.settings, row.public_id, queued_at)
        notification = replace(notification, recipients=tuple(recipients), ack_url=link)
        audit = self.config.audit_channels
        if row.silence_id is not None:
            _record_silenced(session, row, notification, now)
            deliveries, audit = [], ()
        return Addressed(notification, deliveries, audit, self.config.deadline)

    def address_notice(
        self, notification: Notification, team: str, provider: str, now: datetime
    ) -> Addressed:
        found, recipients = routes.notice_target(self.routing, team, provider, now)
        notification = replace(notification, recipients=recipients)
        return Addressed(
            notification, list(found), self.config.audit_channels, self.config.deadline
        )

    def pharmacy_team(self) -> str:
        return routes.pharmacy_team(self.routing)

    def care_team(self, patient: Patient | PatientRecord) -> str:
        return routes.care_team(self.routing, patient)

    def for_channel(self, notification: Notification, channel: str) -> Notification:
        settings = self.config.settings
        configured = settings.channels.get(channel)
        channel_type = configured.type if configured is not None else None
        return routes.page_identity(notification, channel_type, settings.paging.page_identity)

    def queue_fallback(self, session: Session, notification_id: str, now: datetime) -> list[Route]:
        already = outbox.routes_of(session, notification_id)
        fallback = routes.fallback_routes(self.routing, already, now)
        outbox.queue_fallback(session, notification_id, fallback, now, self.config.deadline)
        return fallback

    def escalate(
        self, engine: Engine, now: datetime, queued_at: datetime | None
    ) -> EscalationReport:
        return escalation_steps.escalate(engine, self.config, now, queued_at)

    def _route(self, session: Session, row: Alert, *, first: bool) -> None:
        """Give a new alert (or one never routed) its team; an incident keeps its team,
        unless the configuration no longer has it (then the fallback team)."""
        team = row.team
        if first or not team:
            patient = session.execute(
                select(Patient).where(col(Patient.patient_id) == row.patient_id)
            ).scalar_one_or_none()
            team = routes.alert_team(self.routing, row, patient)
        if team not in self.routing.teams:
            team = self.routing.fallback_team
        lifecycle.assign_team(session, row, team)

    def _target(
        self, session: Session, row: Alert, notification: Notification, now: datetime
    ) -> tuple[list[Route], tuple[str, ...]]:
        """(channel, address) deliveries and JSON recipients of an alert or update: the
        team's current escalation tier (and the ordering provider when the team wants
        them)."""
        team = self.routing.teams[row.team]
        provider = routes.ordering_provider(session, row) if team.add_ordering_provider else ""
        target = self.routing.target(
            row.team,
            notification.severity,
            now,
            tier=row.escalation_tier,
            ordering_provider=provider,
        )
        paging_metrics.routed.labels(row.team, "true" if target.pages else "false").inc()
        return list(target.deliveries), target.recipients


def _mark_silence(session: Session, row: Alert, now: datetime) -> bool:
    """Mark the alert with the silence that matches it now; True when one does."""
    silence = active_silence(session, row, now)
    lifecycle.mark_silence(session, row, silence.id if silence is not None else None)
    return silence is not None


def _record_silenced(
    session: Session, row: Alert, notification: Notification, now: datetime
) -> None:
    paging_metrics.silenced.labels(notification.event).inc()
    lifecycle.record_event(
        session,
        row.id or 0,
        "silenced",
        now,
        notification_id=notification.notification_id,
        detail={"event": notification.event, "silence_id": row.silence_id},
    )


def build_paging(
    settings: Settings,
    channels: Iterable[str],
    *,
    audit_channels: tuple[str, ...],
    recipients: tuple[str, ...],
    deadline: timedelta,
) -> Paging:
    """The application's paging: routed over ``channels`` (every channel that may carry a
    notification), with ``audit_channels`` receiving every notification, when
    ``routing.config`` is set; else flat (``audit_channels`` × ``recipients``).

    Raises ConfigError naming the key or the routing file. Blocks on reading the file.
    """
    if not settings.routing.config:
        return FlatPaging(audit_channels, recipients, deadline)
    config = load_team_routing(settings, sorted(channels))
    return RoutedPaging(replace(config, audit_channels=audit_channels, deadline=deadline))


def paging_for(settings: Settings) -> Paging:
    """The paging of ``settings`` alone (its enabled channels), for commands that run
    without the application. Raises ConfigError; blocks on reading the routing file."""
    channels = [name for name, ch in settings.channels.items() if ch.enabled]
    if not settings.routing.config:
        default = tuple(c for c in settings.routing.default_channels if c in channels)
        deadline = timedelta(seconds=settings.dispatcher.deadline_s)
        return FlatPaging(default, settings.routing.default_recipients, deadline)
    return RoutedPaging(load_team_routing(settings, channels))
