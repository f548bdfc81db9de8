"""Routing: which team an alert goes to, over which channels, to whom. Pure (no I/O, no clock).

Config (configs/routing.toml, validated at start by ``load_routing``; errors name the key):

- ``[people.ID]``: ``name``, ``contacts`` (channel name → address on that channel: pager id,
  e-mail address, webhook recipient) and optional ``provider_ids`` (ORC-12 ids, to add the
  iron's ordering provider).
- ``[teams.ID]``: ``page_channels`` (high/critical), ``notify`` (channel → address for
  warnings: a non-paging channel, e-mail or a worklist; empty = the worklist only),
  ``policy`` (escalation policy name), ``tiers`` (list of rotations: ``members``, ``start``
  local date, ``handoff`` "HH:MM", ``length_days``), ``overrides`` (``tier``, ``person``,
  ``start``, ``end``), ``add_ordering_provider``.
- ``[[routes]]``: ``team`` and match keys ``rules``, ``severities``, ``locations`` (shell-style
  patterns on the point of care, PV1-3.1), ``facilities`` (PV1-3.4), ``services`` (PV1-10);
  every key given must match (empty = any), first matching route wins (Alertmanager's routes
  without ``continue``). No match: ``fallback.team``.
- ``[fallback]``: ``team`` (the pharmacy on-call) and ``channels`` it is reached on when
  another delivery failed for good.
- ``[policies.NAME]``: ``critical_minutes``, ``high_minutes``, ``repeat``,
  ``ack_timeout_minutes`` (0 = none).
- ``[corrective]``: analyte → drug catalog keys whose order after an alert stops escalation,
  and the reserved ``routes``: the routes (RXR-1) that count (IV by default).

The file's shape is checked by the pydantic models of ``alerts.routing_file``; what spans
tables (a team's policy exists, a member is a person reachable on the team's page channels)
by ``load_routing``. Either way ``RoutingError`` names the key (``routing key
'teams.icu.page_channels': ...``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from alerts.escalation import PAGING_SEVERITIES, CorrectiveConfig, Policy
from alerts.oncall import Override, Rotation, Schedule, parse_local
from alerts.routing_file import (
    PHRASES,
    PersonTable,
    PolicyTable,
    RouteTable,
    RoutingFile,
    TeamTable,
)
from alerts.tables import TableError, parse


class RoutingError(ValueError):
    """The routing config is invalid; the message names the key."""


@dataclass(frozen=True)
class Subject:
    """What routing looks at (never the patient id)."""

    rule: str
    severity: str
    location: str = ""  # "poc/room/bed" as stored on the alert
    facility: str = ""
    service: str = ""

    @property
    def point_of_care(self) -> str:
        return self.location.split("/", 1)[0]


@dataclass(frozen=True)
class Match:
    rules: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    locations: tuple[str, ...] = ()  # patterns on the point of care
    facilities: tuple[str, ...] = ()
    services: tuple[str, ...] = ()

    def failed_keys(self, s: Subject) -> tuple[str, ...]:
        """The keys whose patterns ``s`` does not match, in this order: rules, severities,
        locations, facilities, services (empty: the route matches)."""
        checks = (
            ("rules", self.rules, s.rule),
            ("severities", self.severities, s.severity),
            ("locations", self.locations, s.point_of_care),
            ("facilities", self.facilities, s.facility),
            ("services", self.services, s.service),
        )
        return tuple(key for key, patterns, value in checks if not _any(patterns, value))

    def matches(self, s: Subject) -> bool:
        return not self.failed_keys(s)


def _any(patterns: tuple[str, ...], value: str) -> bool:
    if not patterns:
        return True
    value = value.upper()
    return any(fnmatchcase(value, p.upper()) for p in patterns)


@dataclass(frozen=True)
class Route:
    team: str
    match: Match = Match()
    name: str = ""


@dataclass(frozen=True)
class Person:
    id: str
    name: str = ""
    contacts: Mapping[str, str] = field(default_factory=dict)
    provider_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Team:
    id: str
    schedule: Schedule
    policy: str
    page_channels: tuple[str, ...] = ()
    notify: Mapping[str, str] = field(default_factory=dict)
    name: str = ""
    add_ordering_provider: bool = False


@dataclass(frozen=True)
class Target:
    """Where one notification goes: persons (the JSON ``recipients``) and (channel, address)."""

    team: str
    recipients: tuple[str, ...]
    deliveries: tuple[tuple[str, str], ...]
    pages: bool


@dataclass(frozen=True)
class RoutingConfig:
    people: Mapping[str, Person]
    teams: Mapping[str, Team]
    routes: tuple[Route, ...]
    policies: Mapping[str, Policy]
    fallback_team: str
    fallback_channels: tuple[str, ...]
    corrective: CorrectiveConfig

    def route(self, subject: Subject) -> str:
        """The team of the first matching route, else the fallback team."""
        for route in self.routes:
            if route.match.matches(subject):
                return route.team
        return self.fallback_team

    def policy_of(self, team: str) -> Policy:
        return self.policies[self.teams[team].policy]

    def target(
        self,
        team_id: str,
        severity: str,
        at: datetime,
        *,
        tier: int = 1,
        ordering_provider: str = "",
    ) -> Target:
        """Who gets a notification of ``severity`` for ``team_id`` at ``at``."""
        team = self.teams[team_id]
        if severity not in PAGING_SEVERITIES:
            notices = tuple(sorted(team.notify.items()))
            return Target(team_id, (team_id,) if notices else (), notices, False)
        tier = min(max(tier, 1), team.schedule.tier_count)
        persons = [team.schedule.on_call(tier, at)]
        if team.add_ordering_provider and ordering_provider:
            provider = self.person_by_provider(ordering_provider)
            if provider is not None and provider not in persons:
                persons.append(provider)
        pages: list[tuple[str, str]] = []
        for person_id in persons:
            contacts = self.people[person_id].contacts
            pages += [(ch, contacts[ch]) for ch in team.page_channels if ch in contacts]
        return Target(team_id, tuple(persons), tuple(dict.fromkeys(pages)), True)

    def fallback_deliveries(self, at: datetime) -> tuple[tuple[str, str], ...]:
        """(channel, address) of the fallback team's tier-1 on-call on the fallback channels,
        then the fallback team's notify addresses on those channels."""
        team = self.teams[self.fallback_team]
        person = self.people[team.schedule.on_call(1, at)]
        out = [(ch, person.contacts[ch]) for ch in self.fallback_channels if ch in person.contacts]
        out += [(ch, team.notify[ch]) for ch in self.fallback_channels if ch in team.notify]
        return tuple(dict.fromkeys(out))

    def person_by_provider(self, provider_id: str) -> str | None:
        wanted = provider_id.strip().upper()
        for person in self.people.values():
            if wanted in (p.upper() for p in person.provider_ids):
                return person.id
        return None

    def channels(self) -> set[str]:
        used = set(self.fallback_channels)
        for team in self.teams.values():
            used |= set(team.page_channels) | set(team.notify)
        return used


# -- loading ------------------------------------------------------------------------------


def load_routing(
    doc: Mapping[str, Any], zone: ZoneInfo, channels: Iterable[str] | None = None
) -> RoutingConfig:
    """Validate and build the config. ``channels``: the configured channel names (checked).

    Raises ``RoutingError`` naming the key. Pure; never blocks.
    """
    try:
        raw = parse(RoutingFile, doc, PHRASES)
    except TableError as exc:
        raise RoutingError(f"routing key '{exc.path}': {exc.message}") from None
    policies = {name: _policy(name, table) for name, table in raw.policies.items()}
    people = {pid: _person(pid, table) for pid, table in raw.people.items()}
    teams = {
        tid: _team(tid, table, zone=zone, people=people, policies=policies)
        for tid, table in raw.teams.items()
    }
    if not teams:
        raise RoutingError("routing key 'teams': at least one team is required")
    routes = tuple(_route(f"routes[{i}]", table, teams) for i, table in enumerate(raw.routes))
    if raw.fallback.team not in teams:
        raise RoutingError(f"routing key 'fallback.team': no team {raw.fallback.team!r}")
    config = RoutingConfig(
        people=people,
        teams=teams,
        routes=routes,
        policies=policies,
        fallback_team=raw.fallback.team,
        fallback_channels=raw.fallback.channels,
        corrective=CorrectiveConfig.of(drugs=raw.corrective.analytes, routes=raw.corrective.routes),
    )
    if channels is not None:
        missing = sorted(config.channels() - set(channels))
        if missing:
            raise RoutingError(
                f"routing: channel(s) {', '.join(missing)} are used but not configured "
                "(or not enabled) under [channels]"
            )
    return config


def _policy(name: str, table: PolicyTable) -> Policy:
    try:
        return Policy(
            name,
            {
                "critical": timedelta(minutes=table.critical_minutes),
                "high": timedelta(minutes=table.high_minutes),
            },
            repeat=table.repeat,
            ack_timeout=(
                timedelta(minutes=table.ack_timeout_minutes)
                if table.ack_timeout_minutes > 0
                else None
            ),
        )
    except ValueError as exc:
        raise RoutingError(f"routing key 'policies.{name}': {exc}") from None


def _person(pid: str, table: PersonTable) -> Person:
    return Person(id=pid, name=table.name, contacts=table.contacts, provider_ids=table.provider_ids)


def _route(key: str, table: RouteTable, teams: Mapping[str, Team]) -> Route:
    if table.team not in teams:
        raise RoutingError(f"routing key '{key}.team': no team {table.team!r}")
    for severity in table.severities:
        if severity not in ("info", "warning", "high", "critical"):
            raise RoutingError(f"routing key '{key}.severities': unknown {severity!r}")
    match = Match(
        rules=table.rules,
        severities=table.severities,
        locations=table.locations,
        facilities=table.facilities,
        services=table.services,
    )
    return Route(team=table.team, match=match, name=table.name)


def _team(
    tid: str,
    table: TeamTable,
    *,
    zone: ZoneInfo,
    people: Mapping[str, Person],
    policies: Mapping[str, Policy],
) -> Team:
    key = f"teams.{tid}"
    if table.policy not in policies:
        raise RoutingError(f"routing key '{key}.policy': no policy {table.policy!r}")
    if not table.page_channels:
        raise RoutingError(f"routing key '{key}.page_channels': at least one channel")
    tiers = []
    for index, tier in enumerate(table.tiers):
        tkey = f"{key}.tiers[{index}]"
        for member in tier.members:
            _check_person(people, member, table.page_channels, f"{tkey}.members")
        try:
            tiers.append(
                Rotation(
                    tier.members,
                    date.fromisoformat(tier.start),
                    time.fromisoformat(tier.handoff),
                    tier.length_days,
                )
            )
        except ValueError as exc:
            raise RoutingError(f"routing key '{tkey}': {exc}") from None
    if not tiers:
        raise RoutingError(f"routing key '{key}.tiers': at least one tier")
    overrides = []
    for index, item in enumerate(table.overrides):
        okey = f"{key}.overrides[{index}]"
        _check_person(people, item.person, table.page_channels, f"{okey}.person")
        try:
            override = Override(
                item.tier,
                item.person,
                parse_local(item.start, zone),
                parse_local(item.end, zone),
                source=f"override {okey} in the routing file",
                reason=item.reason,
            )
        except ValueError as exc:
            raise RoutingError(f"routing key '{okey}': {exc}") from None
        if not 1 <= override.tier <= len(tiers):
            raise RoutingError(f"routing key '{okey}.tier': the team has {len(tiers)} tier(s)")
        overrides.append(override)
    return Team(
        id=tid,
        schedule=Schedule(zone, tuple(tiers), tuple(overrides)),
        policy=table.policy,
        page_channels=table.page_channels,
        notify=table.notify,
        name=table.name,
        add_ordering_provider=table.add_ordering_provider,
    )


def _check_person(
    people: Mapping[str, Person], pid: str, channels: tuple[str, ...], key: str
) -> None:
    person = people.get(pid)
    if person is None:
        raise RoutingError(f"routing key '{key}': no person {pid!r} under [people]")
    if not any(ch in person.contacts for ch in channels):
        raise RoutingError(
            f"routing key '{key}': {pid!r} has no contact on any of the team's page channels "
            f"({', '.join(channels)})"
        )
