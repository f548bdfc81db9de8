"""Roster changes kept beside the routing file: operator overrides and imported shifts. Pure.

The routing file (``alerts.routing``) holds the rotations; this document (JSON, written by
``labsentinel oncall override`` and ``oncall import-ical``, read with the routing file at start
and on SIGHUP) holds what changes them without editing the file by hand:

- ``shifts``: explicit shifts of one tier imported from an iCalendar export (QGenda, Amion),
  ``{team, tier, person, start, end, source}``; an import replaces the tier's earlier shifts.
- ``overrides``: ``{id, team, tier, person, start, end, reason, created_at, cancelled_at}``,
  the routing file's own override entry (``tier, person, start, end, reason``) plus the team,
  an id to cancel it by and when it was made and cancelled. A cancelled one is kept (the
  record of who was on call when) and no longer applies.

Precedence, lowest first: the rotation, imported shifts, the routing file's overrides, then
these overrides in the order they were made (the last one covering a moment wins, as in
``alerts.oncall``). Times are stored as UTC ISO 8601 with the offset.

Errors are ``RosterError`` naming the key (``oncall key 'overrides[2].person': ...``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from alerts.oncall import Override
from alerts.routing import RoutingConfig
from alerts.routing_file import PHRASES
from alerts.tables import TableError, parse

FORMAT_VERSION = 1
# How an imported shift introduces itself in an explanation (``alerts.route_explain``).
IMPORTED = "imported shift"

Text = Annotated[str, StringConstraints(min_length=1)]


class RosterError(ValueError):
    """The roster changes are invalid or do not fit the routing; the message names the key."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    team: Text
    tier: int = 1
    person: Text
    start: AwareDatetime
    end: AwareDatetime


class ShiftEntry(_Entry):
    source: str = ""  # "ical FILE UID" (no patient data ever)


class OverrideEntry(_Entry):
    id: Text
    reason: str = ""
    created_at: AwareDatetime
    cancelled_at: AwareDatetime | None = None

    @property
    def active(self) -> bool:
        return self.cancelled_at is None


class RosterState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = FORMAT_VERSION
    shifts: tuple[ShiftEntry, ...] = ()
    overrides: tuple[OverrideEntry, ...] = ()


@dataclass(frozen=True)
class NewOverride:
    team: str
    tier: int
    person: str
    start: datetime
    end: datetime
    reason: str = ""


def parse_state(doc: Mapping[str, Any] | None) -> RosterState:
    """The document (``json.load`` output; None: no file yet) validated. Raises RosterError."""
    if doc is None:
        return RosterState()
    try:
        state = parse(RosterState, doc, PHRASES)
    except TableError as exc:
        raise RosterError(f"oncall key '{exc.path}': {exc.message}") from None
    if state.version != FORMAT_VERSION:
        raise RosterError(f"oncall key 'version': {state.version} is not {FORMAT_VERSION}")
    for index, entry in enumerate((*state.shifts, *state.overrides)):
        if not entry.start < entry.end:
            kind = "shifts" if index < len(state.shifts) else "overrides"
            at = index if kind == "shifts" else index - len(state.shifts)
            raise RosterError(f"oncall key '{kind}[{at}].end': must be after start")
    return state


def to_doc(state: RosterState) -> dict[str, Any]:
    """The JSON document of ``state`` (datetimes as UTC ISO text)."""
    return state.model_dump(mode="json")


def override_id(entry: NewOverride, created_at: datetime) -> str:
    """A short stable id: a hash of what the override says and when it was made."""
    text = "|".join(
        (entry.team, str(entry.tier), entry.person, entry.start.isoformat(), entry.end.isoformat())
    )
    return hashlib.sha256(f"{text}|{created_at.isoformat()}".encode()).hexdigest()[:8]


def add_override(
    state: RosterState, routing: RoutingConfig, entry: NewOverride, now: datetime
) -> tuple[RosterState, OverrideEntry]:
    """``state`` with ``entry`` added (checked against ``routing``). Raises RosterError."""
    if not entry.start < entry.end:
        raise RosterError("the override's --until must be after its --from")
    made = OverrideEntry(
        id=override_id(entry, now),
        team=entry.team,
        tier=entry.tier,
        person=entry.person,
        start=entry.start.astimezone(UTC),
        end=entry.end.astimezone(UTC),
        reason=entry.reason,
        created_at=now.astimezone(UTC),
    )
    check_entry(routing, made, f"override for team {entry.team!r}")
    return state.model_copy(update={"overrides": (*state.overrides, made)}), made


def cancel_override(state: RosterState, ident: str, now: datetime) -> RosterState:
    """``state`` with override ``ident`` cancelled. Raises RosterError for an unknown or
    already cancelled id."""
    found = False
    updated = []
    for entry in state.overrides:
        if entry.id == ident:
            if not entry.active:
                raise RosterError(f"override {ident} was already cancelled")
            entry = entry.model_copy(update={"cancelled_at": now.astimezone(UTC)})
            found = True
        updated.append(entry)
    if not found:
        raise RosterError(f"no override {ident!r} (see `labsentinel oncall overrides`)")
    return state.model_copy(update={"overrides": tuple(updated)})


def replace_shifts(
    state: RosterState, team: str, tier: int, shifts: Sequence[ShiftEntry]
) -> RosterState:
    """``state`` with the imported shifts of ``team``'s ``tier`` replaced by ``shifts``."""
    kept = tuple(s for s in state.shifts if (s.team, s.tier) != (team, tier))
    return state.model_copy(update={"shifts": kept + tuple(shifts)})


def apply_state(routing: RoutingConfig, state: RosterState) -> RoutingConfig:
    """``routing`` with the imported shifts and active overrides in its schedules (see the
    module doc for the precedence). Raises RosterError naming the key of an entry that does
    not fit the routing (unknown team or person, a tier the team lacks)."""
    added: dict[str, list[Override]] = {}
    for index, shift in enumerate(state.shifts):
        check_entry(routing, shift, f"oncall key 'shifts[{index}]'")
        added.setdefault(shift.team, []).append(_override(shift, f"{IMPORTED} {shift.source}", ""))
    # The routing file's overrides sit between imported shifts and operator overrides.
    ordered: dict[str, list[Override]] = {
        team: [*added.get(team, []), *routing.teams[team].schedule.overrides]
        for team in routing.teams
    }
    for index, entry in enumerate(state.overrides):
        if not entry.active:
            continue
        check_entry(routing, entry, f"oncall key 'overrides[{index}]'")
        ordered[entry.team].append(_override(entry, f"override {entry.id}", entry.reason))
    teams = {
        tid: replace(team, schedule=replace(team.schedule, overrides=tuple(ordered[tid])))
        for tid, team in routing.teams.items()
    }
    return replace(routing, teams=teams)


def _override(entry: _Entry, source: str, reason: str) -> Override:
    return Override(
        entry.tier,
        entry.person,
        entry.start.astimezone(UTC),
        entry.end.astimezone(UTC),
        source=source,
        reason=reason,
    )


def check_entry(routing: RoutingConfig, entry: _Entry, key: str) -> None:
    team = routing.teams.get(entry.team)
    if team is None:
        raise RosterError(f"{key}: no team {entry.team!r} (teams: {', '.join(routing.teams)})")
    if not 1 <= entry.tier <= team.schedule.tier_count:
        raise RosterError(
            f"{key}: team {entry.team!r} has {team.schedule.tier_count} tier(s), not {entry.tier}"
        )
    person = routing.people.get(entry.person)
    if person is None:
        raise RosterError(f"{key}: no person {entry.person!r} under [people] of the routing file")
    if not any(ch in person.contacts for ch in team.page_channels):
        raise RosterError(
            f"{key}: {entry.person!r} has no contact on the team's page channels "
            f"({', '.join(team.page_channels)})"
        )
