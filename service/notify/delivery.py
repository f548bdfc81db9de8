"""Where notifications go: the ``Paging`` seam, its flat default and the routing it reads.

Every notification path asks one ``Paging`` object, which bootstrap builds once
(``service.notify.routed.build_paging``) and hands to the pipeline (``Delivery.paging``) and
the dispatcher. A small Protocol with two implementations, rather than one class configured
either way, because the two share no state and no code: the flat one is a few lines with no
I/O, the routed one reads the routing file, the database and the clock.

- ``FlatPaging`` (here; no ``routing.config``): every notification goes to the default
  channels × default recipients. No team, no silence check, no escalation, no ack links,
  no ``resolved`` history event, no fallback route, patient identity passed unchanged.
- ``RoutedPaging`` (``service.notify.routed``; ``routing.config`` names a routing file):
  teams, on-call schedules and escalation policies (``alerts.routing``), the audit channels
  that receive every notification once, ack links and the page identity setting.

``TeamRouting`` is the routed paging's configuration, read and validated by
``load_team_routing`` (cached per path, zone, channel set and file stamps). Nothing here writes.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlmodel import Session

from alerts.notification import Notification
from alerts.routing import RoutingConfig
from service.db.models import Alert, Patient
from service.db.patients import PatientRecord
from service.notify import rosters
from service.runtime.settings import ConfigError, Settings

# The events of an alert that page (and carry an ack link); the others are notices.
PAGE_EVENTS = ("alert", "update", "escalation")
# Channel types that reach people outside LabSentinel: the page identity setting applies.
PAGING_TYPES = ("wctp", "smtp", "webhook")

Route = tuple[str, str]  # (channel, address)


@dataclass(frozen=True)
class Addressed:
    """A notification ready to queue: with its recipients (and ack link) set, the
    (channel, address) deliveries, the audit channels and the delivery deadline."""

    notification: Notification
    deliveries: Sequence[Route]
    audit_channels: tuple[str, ...]
    deadline: timedelta


@dataclass
class EscalationReport:
    """What one escalation run did (``Paging.escalate``)."""

    escalated: list[tuple[int, str, int]] = field(default_factory=list)  # alert, kind, step
    stopped: list[tuple[int, str]] = field(default_factory=list)  # alert, reason
    noted: list[tuple[int, str, str]] = field(default_factory=list)  # alert, drug, why
    exhausted: list[int] = field(default_factory=list)


class Paging(Protocol):
    """Who gets a notification and what paging does around it (see the module doc).

    The methods taking a session run in the caller's transaction and block on the database;
    ``escalate`` opens its own transactions.
    """

    @property
    def teams(self) -> tuple[str, ...]:
        """The teams notifications are routed to (metric label values)."""
        ...

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
        """The alert's paging state for its plan's ``event`` (alert, update, resolved),
        before its notification is built: team, silence, escalation start, history.
        ``notified``: whether the event produces a notification; ``worklist``: a finding
        too old to page when found."""
        ...

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
        """Address an alert's notification (``worklist``: a notice, never a page)."""
        ...

    def address_notice(
        self, notification: Notification, team: str, provider: str, now: datetime
    ) -> Addressed:
        """Address a notice without an alert (advisory, reminder) to ``team`` and the
        prescriber ``provider`` (an ORC-12 field, may be empty)."""
        ...

    def pharmacy_team(self) -> str:
        """The team order-time advisories go to ("" without teams)."""
        ...

    def care_team(self, patient: Patient | PatientRecord) -> str:
        """The team a patient's reminders go to ("" without teams)."""
        ...

    def for_channel(self, notification: Notification, channel: str) -> Notification:
        """``notification`` with as much patient identity as ``channel`` may carry."""
        ...

    def queue_fallback(self, session: Session, notification_id: str, now: datetime) -> list[Route]:
        """Queue a notification whose delivery failed for good on the fallback route;
        return the routes queued."""
        ...

    def escalate(
        self, engine: Engine, now: datetime, queued_at: datetime | None
    ) -> EscalationReport:
        """Take every escalation step due at ``now``, queueing pages at ``queued_at`` (the
        wall clock at each step when None). Raises SQLAlchemyError."""
        ...


@dataclass(frozen=True)
class FlatPaging:
    """No routing file: every notification to ``channels`` × ``recipients``, nothing else."""

    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    deadline: timedelta

    @property
    def teams(self) -> tuple[str, ...]:
        return ()

    def _deliveries(self) -> list[Route]:
        return [(c, r) for c in self.channels for r in self.recipients]

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
        return None

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
        return Addressed(notification, self._deliveries(), (), self.deadline)

    def address_notice(
        self, notification: Notification, team: str, provider: str, now: datetime
    ) -> Addressed:
        notification = replace(notification, recipients=self.recipients)
        return Addressed(notification, self._deliveries(), (), self.deadline)

    def pharmacy_team(self) -> str:
        return ""

    def care_team(self, patient: Patient | PatientRecord) -> str:
        return ""

    def for_channel(self, notification: Notification, channel: str) -> Notification:
        return notification

    def queue_fallback(self, session: Session, notification_id: str, now: datetime) -> list[Route]:
        return []

    def escalate(
        self, engine: Engine, now: datetime, queued_at: datetime | None
    ) -> EscalationReport:
        return EscalationReport()


@dataclass(frozen=True)
class Delivery:
    """Where the pipeline's notifications go: ``paging`` addresses them; ``recipients`` are
    the default recipients a notification is built with (routing replaces them)."""

    channels: tuple[str, ...]
    recipients: tuple[str, ...]
    deadline: timedelta
    paging: Paging
    base_url: str = ""


@dataclass(frozen=True)
class TeamRouting:
    """Routing, schedules and policies plus what building a page needs from the settings."""

    routing: RoutingConfig
    settings: Settings
    audit_channels: tuple[str, ...]
    deadline: timedelta


def load_team_routing(settings: Settings, channels: Iterable[str]) -> TeamRouting:
    """Read and validate ``routing.config`` against ``channels``; the audit channels are the
    default channels among them plus those not in the settings (``--pages-out``).

    Raises ConfigError naming the key or the file (also when ``routing.config`` is empty).
    Blocks on reading the file (once per path, zone and channel set).
    """
    if not settings.routing.config:
        raise ConfigError("config key 'routing.config': no routing file configured")
    path = settings.resolve_path(settings.routing.config)
    channels = tuple(channels)
    # The files' modification times are part of the cache key: a roster change written by
    # `labsentinel oncall override` is read again (service.notify.rosters).
    routing = _load_routing(str(path), settings.hospital.timezone, channels, rosters.stamp(path))
    audit = tuple(c for c in settings.routing.default_channels if c in channels)
    audit += tuple(c for c in channels if c not in settings.channels and c not in audit)
    return TeamRouting(routing, settings, audit, timedelta(seconds=settings.dispatcher.deadline_s))


@functools.lru_cache(maxsize=8)
def _load_routing(
    path: str, timezone: str, channels: tuple[str, ...], stamp: tuple[int, int]
) -> RoutingConfig:
    """The routing file with its roster changes; ``stamp`` only keys the cache."""
    return rosters.read_routing(Path(path), ZoneInfo(timezone), channels).routing
