"""Who is on call: weekly (or n-day) rotations with handoffs in the hospital's time zone, date
range overrides, several tiers per team. Pure: every function takes ``at`` explicitly.

A rotation hands over every ``length_days`` days at ``handoff`` local time, counted from the
local date ``start`` (whose handoff opens the first shift, held by ``members[0]``). Handoffs are
computed on local calendar dates, so a weekly handoff at 08:00 stays at 08:00 across daylight
saving changes (the shift that spans the change is an hour shorter or longer), as PagerDuty
schedules do. A local handoff time that does not exist that day (spring forward) resolves as
``zoneinfo`` resolves it (fold=0: the earlier offset, i.e. the next real instant).

An override puts ``person`` on call for one tier from ``start`` to ``end`` (aware datetimes,
``end`` exclusive); when overrides overlap, the one listed last wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Rotation:
    members: tuple[str, ...]
    start: date
    handoff: time
    length_days: int = 7

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("a rotation needs at least one member")
        if self.length_days < 1:
            raise ValueError("length_days must be >= 1")

    def handoff_at(self, index: int, zone: ZoneInfo) -> datetime:
        """The (UTC) instant shift ``index`` begins (index 0 = the first shift)."""
        day = self.start + timedelta(days=index * self.length_days)
        return datetime.combine(day, self.handoff, tzinfo=zone).astimezone(UTC)

    def shift_index(self, at: datetime, zone: ZoneInfo) -> int:
        local_day = at.astimezone(zone).date()
        index = (local_day - self.start).days // self.length_days
        # The local date alone can be one shift ahead (before the handoff time on a handoff
        # day) — compare instants to settle it.
        while self.handoff_at(index, zone) > at:
            index -= 1
        while self.handoff_at(index + 1, zone) <= at:
            index += 1
        return index

    def member_at(self, at: datetime, zone: ZoneInfo) -> str:
        return self.members[self.shift_index(at, zone) % len(self.members)]


@dataclass(frozen=True)
class Override:
    tier: int
    person: str
    start: datetime
    end: datetime
    # Where it comes from, for an explanation ("routing.toml", "override 3f2a…", "ical …")
    # and why (free text from the operator; never patient data).
    source: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override times must be timezone-aware")
        if not self.start < self.end:
            raise ValueError("override start must be before its end")

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Schedule:
    """A team's tiers (tier 1 = ``tiers[0]``) and overrides, in ``zone``."""

    zone: ZoneInfo
    tiers: tuple[Rotation, ...]
    overrides: tuple[Override, ...] = ()

    @property
    def tier_count(self) -> int:
        return len(self.tiers)

    def on_call(self, tier: int, at: datetime) -> str:
        """The person on call for ``tier`` (1-based) at ``at`` (aware). Raises ValueError for a
        tier the schedule does not have or a naive time."""
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware")
        if not 1 <= tier <= len(self.tiers):
            raise ValueError(f"no tier {tier} (the schedule has {len(self.tiers)})")
        override = self.override_at(tier, at)
        if override is not None:
            return override.person
        return self.tiers[tier - 1].member_at(at, self.zone)

    def override_at(self, tier: int, at: datetime) -> Override | None:
        """The override that decides ``tier`` at ``at`` (the last listed that covers it)."""
        for override in reversed(self.overrides):
            if override.tier == tier and override.covers(at):
                return override
        return None

    def next_handoff(self, tier: int, at: datetime) -> datetime:
        rotation = self.tiers[tier - 1]
        return rotation.handoff_at(rotation.shift_index(at, self.zone) + 1, self.zone)


def parse_local(text: str, zone: ZoneInfo) -> datetime:
    """ISO 8601 date or date-time; without an offset it is local time in ``zone``."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)
