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
- ``[corrective]``: analyte → drug catalog keys whose order after an alert stops escalation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from fnmatch import fnmatchcase
from typing import Any
from zoneinfo import ZoneInfo

from alerts.escalation import PAGING_SEVERITIES, Policy
from alerts.oncall import Override, Rotation, Schedule, parse_local


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

    def matches(self, s: Subject) -> bool:
        return (
            _any(self.rules, s.rule)
            and _any(self.severities, s.severity)
            and _any(self.locations, s.point_of_care)
            and _any(self.facilities, s.facility)
            and _any(self.services, s.service)
        )


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
    corrective: Mapping[str, tuple[str, ...]]

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
    """Validate and build the config. ``channels``: the configured channel names (checked)."""
    known = {"people", "teams", "routes", "fallback", "policies", "corrective"}
    _no_extra(doc, known, "")
    policies = {
        name: _policy(name, _table(raw, f"policies.{name}"))
        for name, raw in _table(doc.get("policies", {}), "policies").items()
    }
    people = {
        pid: _person(pid, _table(raw, f"people.{pid}"))
        for pid, raw in _table(doc.get("people", {}), "people").items()
    }
    teams = {
        tid: _team(tid, _table(raw, f"teams.{tid}"), zone, people, policies)
        for tid, raw in _table(doc.get("teams", {}), "teams").items()
    }
    if not teams:
        raise RoutingError("routing key 'teams': at least one team is required")
    routes = []
    for index, raw in enumerate(doc.get("routes", [])):
        key = f"routes[{index}]"
        raw = _table(raw, key)
        _no_extra(raw, {"team", "name", *Match.__dataclass_fields__}, key)
        team = _str(raw, "team", key)
        if team not in teams:
            raise RoutingError(f"routing key '{key}.team': no team {team!r}")
        match = Match(**{k: _strs(raw, k, key) for k in Match.__dataclass_fields__ if k in raw})
        for severity in match.severities:
            if severity not in ("info", "warning", "high", "critical"):
                raise RoutingError(f"routing key '{key}.severities': unknown {severity!r}")
        routes.append(Route(team, match, str(raw.get("name", ""))))
    fallback = _table(doc.get("fallback", {}), "fallback")
    _no_extra(fallback, {"team", "channels"}, "fallback")
    fallback_team = _str(fallback, "team", "fallback")
    if fallback_team not in teams:
        raise RoutingError(f"routing key 'fallback.team': no team {fallback_team!r}")
    corrective = {
        analyte: _strs(_table(doc.get("corrective", {}), "corrective"), analyte, "corrective")
        for analyte in _table(doc.get("corrective", {}), "corrective")
    }
    config = RoutingConfig(
        people=people,
        teams=teams,
        routes=tuple(routes),
        policies=policies,
        fallback_team=fallback_team,
        fallback_channels=_strs(fallback, "channels", "fallback"),
        corrective=corrective,
    )
    if channels is not None:
        missing = sorted(config.channels() - set(channels))
        if missing:
            raise RoutingError(
                f"routing: channel(s) {', '.join(missing)} are used but not configured "
                "(or not enabled) under [channels]"
            )
    return config


def _policy(name: str, raw: Mapping[str, Any]) -> Policy:
    key = f"policies.{name}"
    _no_extra(raw, {"critical_minutes", "high_minutes", "repeat", "ack_timeout_minutes"}, key)
    try:
        ack = float(raw.get("ack_timeout_minutes", 0))
        return Policy(
            name,
            {
                "critical": timedelta(minutes=float(raw["critical_minutes"])),
                "high": timedelta(minutes=float(raw["high_minutes"])),
            },
            repeat=int(raw.get("repeat", 0)),
            ack_timeout=timedelta(minutes=ack) if ack > 0 else None,
        )
    except KeyError as exc:
        raise RoutingError(f"routing key '{key}.{exc.args[0]}': required") from None
    except (TypeError, ValueError) as exc:
        raise RoutingError(f"routing key '{key}': {exc}") from None


def _person(pid: str, raw: Mapping[str, Any]) -> Person:
    key = f"people.{pid}"
    _no_extra(raw, {"name", "contacts", "provider_ids"}, key)
    contacts = {str(k): str(v) for k, v in _table(raw.get("contacts", {}), key).items()}
    return Person(pid, str(raw.get("name", "")), contacts, _strs(raw, "provider_ids", key))


def _team(
    tid: str,
    raw: Mapping[str, Any],
    zone: ZoneInfo,
    people: Mapping[str, Person],
    policies: Mapping[str, Policy],
) -> Team:
    key = f"teams.{tid}"
    _no_extra(
        raw,
        {
            "name",
            "page_channels",
            "notify",
            "policy",
            "tiers",
            "overrides",
            "add_ordering_provider",
        },
        key,
    )
    policy = _str(raw, "policy", key)
    if policy not in policies:
        raise RoutingError(f"routing key '{key}.policy': no policy {policy!r}")
    page_channels = _strs(raw, "page_channels", key)
    if not page_channels:
        raise RoutingError(f"routing key '{key}.page_channels': at least one channel")
    tiers = []
    for index, tier in enumerate(raw.get("tiers", [])):
        tkey = f"{key}.tiers[{index}]"
        tier = _table(tier, tkey)
        _no_extra(tier, {"members", "start", "handoff", "length_days"}, tkey)
        members = _strs(tier, "members", tkey)
        for member in members:
            _check_person(people, member, page_channels, f"{tkey}.members")
        try:
            tiers.append(
                Rotation(
                    members,
                    date.fromisoformat(_str(tier, "start", tkey)),
                    time.fromisoformat(str(tier.get("handoff", "08:00"))),
                    int(tier.get("length_days", 7)),
                )
            )
        except ValueError as exc:
            raise RoutingError(f"routing key '{tkey}': {exc}") from None
    if not tiers:
        raise RoutingError(f"routing key '{key}.tiers': at least one tier")
    overrides = []
    for index, item in enumerate(raw.get("overrides", [])):
        okey = f"{key}.overrides[{index}]"
        item = _table(item, okey)
        _no_extra(item, {"tier", "person", "start", "end", "reason"}, okey)
        person = _str(item, "person", okey)
        _check_person(people, person, page_channels, f"{okey}.person")
        try:
            override = Override(
                int(item.get("tier", 1)),
                person,
                parse_local(str(item["start"]), zone),
                parse_local(str(item["end"]), zone),
            )
        except KeyError as exc:
            raise RoutingError(f"routing key '{okey}.{exc.args[0]}': required") from None
        except ValueError as exc:
            raise RoutingError(f"routing key '{okey}': {exc}") from None
        if not 1 <= override.tier <= len(tiers):
            raise RoutingError(f"routing key '{okey}.tier': the team has {len(tiers)} tier(s)")
        overrides.append(override)
    notify = {str(k): str(v) for k, v in _table(raw.get("notify", {}), f"{key}.notify").items()}
    return Team(
        tid,
        Schedule(zone, tuple(tiers), tuple(overrides)),
        policy,
        page_channels,
        notify,
        str(raw.get("name", "")),
        bool(raw.get("add_ordering_provider", False)),
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


def _table(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise RoutingError(f"routing key '{key}': expected a table")
    return value


def _no_extra(raw: Mapping[str, Any], allowed: set[str], key: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        where = f"{key}." if key else ""
        raise RoutingError(f"routing key '{where}{extra[0]}': unknown setting (check the spelling)")


def _str(raw: Mapping[str, Any], name: str, key: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise RoutingError(f"routing key '{key}.{name}': required text")
    return value


def _strs(raw: Mapping[str, Any], name: str, key: str) -> tuple[str, ...]:
    value = raw.get(name, ())
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise RoutingError(f"routing key '{key}.{name}': expected a list of text")
    return tuple(value)
