"""A tier's on-call timeline: exact segments at handoffs and override edges, merged."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.oncall import Override, Rotation, Schedule
from alerts.roster_timeline import tier_segments

NY = ZoneInfo("America/New_York")
DAILY = Rotation(("ann", "bob"), date(2024, 3, 8), time(8, 0), 1)  # daily handoff 08:00
WEEKLY = Rotation(("cat",), date(2024, 3, 4), time(8, 0), 7)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_daily_handoffs_across_the_dst_change_stay_at_eight_local() -> None:
    schedule = Schedule(NY, (DAILY,))
    segments = tier_segments(schedule, 1, utc("2024-03-09T00:00"), utc("2024-03-11T18:00"))
    assert [(s.person, s.start, s.end) for s in segments] == [
        ("ann", utc("2024-03-09T00:00"), utc("2024-03-09T13:00")),  # 08:00 EST
        ("bob", utc("2024-03-09T13:00"), utc("2024-03-10T12:00")),  # 08:00 EDT: 23 h shift
        ("ann", utc("2024-03-10T12:00"), utc("2024-03-11T12:00")),
        ("bob", utc("2024-03-11T12:00"), utc("2024-03-11T18:00")),  # cut at the span's end
    ]
    assert {s.because for s in segments} == {"rotation"}


def test_an_override_splits_a_shift_and_the_rest_is_merged() -> None:
    cover = Override(1, "dan", utc("2024-03-12T00:00"), utc("2024-03-13T00:00"), "override ab12")
    schedule = Schedule(NY, (WEEKLY,), (cover,))
    segments = tier_segments(schedule, 1, utc("2024-03-11T00:00"), utc("2024-03-15T00:00"))
    assert [(s.person, s.because) for s in segments] == [
        ("cat", "rotation"),  # the Monday handoff to cat again is merged (one member)
        ("dan", "override"),
        ("cat", "rotation"),
    ]
    assert segments[1].detail == "ab12"  # the kind is in `because`, not repeated
    assert segments[0].end == segments[1].start == cover.start


def test_imported_shifts_are_named_as_such() -> None:
    shift = Override(
        1, "eve", utc("2024-03-12T00:00"), utc("2024-03-13T00:00"), "imported shift q.ics u1"
    )
    schedule = Schedule(NY, (WEEKLY,), (shift,))
    segments = tier_segments(schedule, 1, utc("2024-03-11T00:00"), utc("2024-03-15T00:00"))
    assert segments[1].because == "imported shift"


def test_the_segments_cover_the_span_without_gaps() -> None:
    cover = Override(1, "dan", utc("2024-03-09T05:00"), utc("2024-03-10T05:00"), "o")
    schedule = Schedule(NY, (DAILY,), (cover,))
    start, end = utc("2024-03-08T00:00"), utc("2024-03-15T00:00")
    segments = tier_segments(schedule, 1, start, end)
    assert segments[0].start == start and segments[-1].end == end
    assert all(a.end == b.start for a, b in zip(segments, segments[1:], strict=False))
    for s in segments:  # each segment's holder is the schedule's, at its start and its end
        assert schedule.on_call(1, s.start) == s.person
        assert schedule.on_call(1, s.end - timedelta(seconds=1)) == s.person


def test_bad_arguments() -> None:
    schedule = Schedule(NY, (DAILY,))
    with pytest.raises(ValueError, match="no tier 2"):
        tier_segments(schedule, 2, utc("2024-03-08T00:00"), utc("2024-03-09T00:00"))
    with pytest.raises(ValueError, match="timezone-aware"):
        tier_segments(schedule, 1, datetime(2024, 3, 8), utc("2024-03-09T00:00"))
