"""On-call resolution: weekly rotations with local handoffs (DST), overrides, tiers."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from alerts.oncall import Override, Rotation, Schedule, parse_local

NY = ZoneInfo("America/New_York")
# 2024-03-04 is a Monday; US DST starts Sunday 2024-03-10, ends Sunday 2024-11-03.
ROT = Rotation(("ann", "bob", "cat"), date(2024, 3, 4), time(8, 0), 7)
TIER2 = Rotation(("dan",), date(2024, 3, 4), time(8, 0), 7)
SCHEDULE = Schedule(
    NY,
    (ROT, TIER2),
    (
        Override(
            1, "zed", parse_local("2024-03-20T12:00", NY), parse_local("2024-03-21T12:00", NY)
        ),
        # a later override wins over an earlier overlapping one
        Override(
            1, "yan", parse_local("2024-03-20T18:00", NY), parse_local("2024-03-20T20:00", NY)
        ),
    ),
)


def local(text: str) -> datetime:
    return parse_local(text, NY)


@pytest.mark.parametrize(
    ("at", "tier", "expected"),
    [
        ("2024-03-04T08:00", 1, "ann"),  # first handoff opens ann's shift
        ("2024-03-04T07:59", 1, "cat"),  # before the start: the previous shift (cycle)
        ("2024-03-11T07:59", 1, "ann"),  # the week after DST began: handoff still 08:00 local
        ("2024-03-11T08:00", 1, "bob"),
        ("2024-03-18T08:00", 1, "cat"),
        ("2024-03-25T08:00", 1, "ann"),  # wraps around
        ("2024-03-20T11:59", 1, "cat"),
        ("2024-03-20T12:00", 1, "zed"),  # override begins
        ("2024-03-20T18:30", 1, "yan"),  # the later override wins
        ("2024-03-21T11:59", 1, "zed"),
        ("2024-03-21T12:00", 1, "cat"),  # end is exclusive
        ("2024-03-20T12:30", 2, "dan"),  # overrides are per tier
        ("2024-11-04T07:59", 1, "bob"),  # after DST ended: 35 weeks since start, index 34
        ("2024-11-04T08:00", 1, "cat"),  # index 35
    ],
)
def test_on_call(at: str, tier: int, expected: str) -> None:
    assert SCHEDULE.on_call(tier, local(at)) == expected


def test_handoff_is_local_time_across_dst() -> None:
    before = ROT.handoff_at(0, NY)  # 2024-03-04 08:00 EST = 13:00 UTC
    after = ROT.handoff_at(1, NY)  # 2024-03-11 08:00 EDT = 12:00 UTC
    assert before == datetime(2024, 3, 4, 13, 0, tzinfo=UTC)
    assert after == datetime(2024, 3, 11, 12, 0, tzinfo=UTC)
    assert SCHEDULE.next_handoff(1, local("2024-03-05T00:00")) == after


def test_unknown_tier_and_naive_time_are_refused() -> None:
    with pytest.raises(ValueError):
        SCHEDULE.on_call(3, local("2024-03-05T00:00"))
    with pytest.raises(ValueError):
        SCHEDULE.on_call(1, datetime(2024, 3, 5))
