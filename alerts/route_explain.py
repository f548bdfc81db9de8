"""Why a finding would page whom: the ``routes test`` explanation (Alertmanager's ``amtool
config routes test``, plus the on-call answer). Pure: routing, a subject and ``at`` in, a
structured ``Explanation`` out; it decides exactly as ``RoutingConfig.route`` and
``RoutingConfig.target`` do (and says so in its tests), so the answer is the one a page gets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.escalation import PAGING_SEVERITIES
from alerts.roster_state import IMPORTED
from alerts.routing import Match, RoutingConfig, Subject


@dataclass(frozen=True)
class RouteCheck:
    """One route, in file order, as tested against the subject."""

    index: int
    name: str
    team: str
    matched: bool
    mismatched: tuple[str, ...] = ()  # the match keys that did not match


@dataclass(frozen=True)
class OnCall:
    """Who holds one tier at ``at``, and because of what."""

    tier: int
    person: str
    name: str
    because: str  # "rotation" | "override" (the routing file's or an operator's) | IMPORTED
    detail: str  # the rotation's shift, or where the override comes from and its reason
    until: datetime | None  # the next handoff or the override's end (UTC)
    contacts: tuple[tuple[str, str], ...] = ()  # (channel, address) on the page channels


@dataclass(frozen=True)
class Explanation:
    subject: Subject
    at: datetime
    checks: tuple[RouteCheck, ...]
    team: str
    route: str  # the matching route's name (or "routes[i]"), "" for the fallback team
    pages: bool
    tier: int
    deliveries: tuple[tuple[str, str], ...]
    on_call: OnCall | None
    escalation: tuple[tuple[int, str, float], ...] = ()  # (tier, person, minutes after page)
    fallbacks: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        s = self.subject
        return {
            "at": self.at.isoformat(),
            "subject": {
                "rule": s.rule,
                "severity": s.severity,
                "location": s.location,
                "facility": s.facility,
                "service": s.service,
            },
            "routes": [
                {
                    "index": c.index,
                    "name": c.name,
                    "team": c.team,
                    "matched": c.matched,
                    "mismatched": list(c.mismatched),
                }
                for c in self.checks
            ],
            "team": self.team,
            "route": self.route,
            "pages": self.pages,
            "tier": self.tier,
            "on_call": None
            if self.on_call is None
            else {
                "tier": self.on_call.tier,
                "person": self.on_call.person,
                "name": self.on_call.name,
                "because": self.on_call.because,
                "detail": self.on_call.detail,
                "until": self.on_call.until.isoformat() if self.on_call.until else None,
                "contacts": [list(c) for c in self.on_call.contacts],
            },
            "deliveries": [list(d) for d in self.deliveries],
            "escalation": [
                {"tier": tier, "person": person, "after_minutes": minutes}
                for tier, person, minutes in self.escalation
            ],
            "fallbacks": list(self.fallbacks),
            "notes": list(self.notes),
        }


def mismatched_keys(match: Match, subject: Subject) -> tuple[str, ...]:
    """The match keys of a route that ``subject`` fails (empty: the route matches)."""
    return match.failed_keys(subject)


def on_call(routing: RoutingConfig, team_id: str, tier: int, at: datetime) -> OnCall:
    """Who holds ``tier`` of ``team_id`` at ``at`` and why. Raises ValueError (no such tier)."""
    team = routing.teams[team_id]
    schedule = team.schedule
    person = schedule.on_call(tier, at)
    override = schedule.override_at(tier, at)
    contacts = routing.people[person].contacts
    reachable = tuple((ch, contacts[ch]) for ch in team.page_channels if ch in contacts)
    name = routing.people[person].name
    if override is not None:
        detail = override.source or "override"
        if override.reason:
            detail += f" ({override.reason})"
        because = IMPORTED if detail.startswith(IMPORTED) else "override"
        return OnCall(tier, person, name, because, detail, override.end, reachable)
    rotation = schedule.tiers[tier - 1]
    index = rotation.shift_index(at, schedule.zone)
    begun = rotation.handoff_at(index, schedule.zone).astimezone(schedule.zone)
    detail = (
        f"tier {tier} rotation: shift {index} began {begun.isoformat()}, "
        f"member {index % len(rotation.members) + 1} of {len(rotation.members)} "
        f"(every {rotation.length_days} d at {rotation.handoff.strftime('%H:%M')})"
    )
    until = schedule.next_handoff(tier, at)
    # An override starting before the handoff ends this shift early: say so.
    for item in schedule.overrides:
        if item.tier == tier and at < item.start < until:
            until = item.start
    return OnCall(tier, person, name, "rotation", detail, until, reachable)


def explain(
    routing: RoutingConfig, subject: Subject, at: datetime, *, tier: int = 1
) -> Explanation:
    """Which route, team, tier and person a finding of ``subject`` at ``at`` reaches, and why.

    ``tier``: the escalation tier to look at (1: the first page). Raises ValueError for a
    naive ``at``. Pure.
    """
    if at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    checks = []
    chosen: RouteCheck | None = None
    for index, route in enumerate(routing.routes):
        failed = mismatched_keys(route.match, subject) if chosen is None else ()
        check = RouteCheck(
            index,
            route.name or f"routes[{index}]",
            route.team,
            chosen is None and not failed,
            failed,
        )
        checks.append(check)
        if check.matched:
            chosen = check
    fallbacks: list[str] = []
    notes: list[str] = []
    if chosen is None:
        team_id = routing.fallback_team
        fallbacks.append(f"no route matched: the fallback team {team_id!r} ([fallback].team)")
    else:
        team_id = chosen.team
    assert team_id == routing.route(subject), "explanation and routing must agree"
    team = routing.teams[team_id]
    pages = subject.severity in PAGING_SEVERITIES
    target = routing.target(team_id, subject.severity, at, tier=tier)
    if not pages:
        if target.deliveries:
            notes.append(f"{subject.severity} does not page: notice to the team's notify channels")
        else:
            notes.append(
                f"{subject.severity} does not page: worklist only (the team has no notify)"
            )
        return Explanation(
            subject,
            at,
            tuple(checks),
            team_id,
            chosen.name if chosen else "",
            False,
            0,
            target.deliveries,
            None,
            fallbacks=tuple(fallbacks),
            notes=tuple(notes),
        )
    used_tier = min(max(tier, 1), team.schedule.tier_count)
    if used_tier != tier:
        fallbacks.append(f"tier {tier} does not exist: the team's last tier {used_tier} is paged")
    holder = on_call(routing, team_id, used_tier, at)
    missing = [ch for ch in team.page_channels if ch not in dict(holder.contacts)]
    if missing:
        notes.append(f"{holder.person} has no address on {', '.join(missing)}: not paged there")
    policy = routing.policy_of(team_id)
    wait = policy.timeouts[subject.severity]
    escalation = []
    for step, next_tier in enumerate(range(used_tier + 1, team.schedule.tier_count + 1), 1):
        then = at + wait * step
        escalation.append(
            (next_tier, team.schedule.on_call(next_tier, then), wait * step / timedelta(minutes=1))
        )
    fallback_people = routing.fallback_deliveries(at)
    if fallback_people:
        notes.append(
            "a delivery failed for good goes again to the fallback team "
            f"{routing.fallback_team!r}: " + ", ".join(f"{c}={a}" for c, a in fallback_people)
        )
    return Explanation(
        subject,
        at,
        tuple(checks),
        team_id,
        chosen.name if chosen else "",
        True,
        used_tier,
        target.deliveries,
        holder,
        tuple(escalation),
        tuple(fallbacks),
        tuple(notes),
    )
