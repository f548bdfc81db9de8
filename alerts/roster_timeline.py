"""Who is on call over a span: a tier's schedule as consecutive segments. Pure.

For the schedule page: between two instants, every moment the holder of a tier can change
is a rotation handoff or an override's (or imported shift's) start or end; between two such
moments the holder is constant, so asking ``Schedule.on_call`` at each boundary gives the
exact timeline, overrides included, without sampling.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alerts.oncall import Schedule
from alerts.roster_state import IMPORTED


@dataclass(frozen=True)
class Segment:
    person: str
    start: datetime
    end: datetime
    because: str  # "rotation" | "override" | IMPORTED
    detail: str = ""  # the override's source and reason


def tier_segments(schedule: Schedule, tier: int, start: datetime, end: datetime) -> list[Segment]:
    """The holders of ``tier`` from ``start`` to ``end`` (aware), adjacent equal segments
    merged. Raises ValueError for a tier the schedule lacks or a naive time."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if not 1 <= tier <= schedule.tier_count:
        raise ValueError(f"no tier {tier} (the schedule has {schedule.tier_count})")
    cuts = {start, end}
    moment = start
    while True:
        moment = schedule.next_handoff(tier, moment)
        if moment >= end:
            break
        cuts.add(moment)
    for item in schedule.overrides:
        if item.tier == tier:
            cuts |= {t for t in (item.start, item.end) if start < t < end}
    points = sorted(cuts)
    segments: list[Segment] = []
    for begin, finish in zip(points, points[1:], strict=False):
        override = schedule.override_at(tier, begin)
        if override is None:
            person, because, detail = schedule.on_call(tier, begin), "rotation", ""
        else:
            because = IMPORTED if override.source.startswith(IMPORTED) else "override"
            # The source reads "override 5d38…": its kind is already in ``because``.
            source = override.source.removeprefix(because).strip()
            detail = source + (f" ({override.reason})" if override.reason else "")
            person = override.person
        last = segments[-1] if segments else None
        if last and (last.person, last.because, last.detail) == (person, because, detail):
            segments[-1] = Segment(person, last.start, finish, because, detail)
        else:
            segments.append(Segment(person, begin, finish, because, detail))
    return segments
