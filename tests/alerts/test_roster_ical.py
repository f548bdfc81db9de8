"""On-call shifts from real iCalendar exports (fixtures in tests/alerts/ical/, CRLF lines)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from alerts.roster_ical import IcalError, Window, shifts_from_ical
from alerts.roster_state import RosterState, apply_state, replace_shifts
from alerts.routing import RoutingConfig, load_routing

FIXTURES = Path(__file__).resolve().parent / "ical"
NY = ZoneInfo("America/New_York")
MARCH = Window(datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 4, 30, tzinfo=UTC))

ROUTING_TOML = """
[policies.standard]
critical_minutes = 10
high_minutes = 30

[people.ada]
name = "Ada Lovelace"
contacts = { console = "pager-1", email = "ada@hospital.example" }
[people.bob]
name = "Bob Babbage"
contacts = { console = "pager-2" }
[people.cy]
name = "Cy Young"
contacts = { console = "pager-3", email = "cy@hospital.example" }
[people.dee]
name = "Dee Email Only"
contacts = { email = "dee@hospital.example" }

[teams.icu]
policy = "standard"
page_channels = ["console"]
tiers = [{ members = ["bob"], start = "2024-01-01", handoff = "08:00" }]

[fallback]
team = "icu"
"""


def routing() -> RoutingConfig:
    return load_routing(tomllib.loads(ROUTING_TOML), NY)


def read(name: str, window: Window = MARCH, tier: int = 1) -> list:
    data = (FIXTURES / name).read_bytes()
    return shifts_from_ical(
        data, routing(), team="icu", tier=tier, window=window, zone=NY, source=name
    )


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_recurring_night_call_with_an_exception_date_across_the_dst_change() -> None:
    shifts = read("qgenda_nights.ics")
    assert [(s.person, s.start, s.end) for s in shifts] == [
        # 17:00 EST to 08:00 EST: 15 h
        ("ada", utc("2024-03-08T22:00"), utc("2024-03-09T13:00")),
        # the night DST begins (02:00 → 03:00): 17:00 EST to 08:00 EDT, 14 h
        ("bob", utc("2024-03-09T22:00"), utc("2024-03-10T12:00")),
        # EXDATE removed Ada's 9 March night; after the change 17:00 EDT = 21:00 UTC
        ("ada", utc("2024-03-10T21:00"), utc("2024-03-11T12:00")),
        ("ada", utc("2024-03-11T21:00"), utc("2024-03-12T12:00")),
    ]
    # The VTIMEZONE is Windows-named ("Eastern Standard Time"), not an IANA zone: the
    # offsets come from the file's own rules.
    assert shifts[1].end - shifts[1].start == timedelta(hours=14)
    assert shifts[0].source == "qgenda_nights.ics night-ada-2024-03@qgenda.example"


def test_cancelled_events_are_skipped() -> None:
    assert all(s.start < utc("2024-03-14T00:00") for s in read("qgenda_nights.ics"))


def test_attendees_a_moved_occurrence_and_an_all_day_event() -> None:
    shifts = read("amion_weekly.ics")
    assert [(s.person, s.start, s.end) for s in shifts] == [
        # a fortnightly week, 08:00 EST to 08:00 EDT (the DST change inside the week)
        ("cy", utc("2024-03-04T13:00"), utc("2024-03-11T12:00")),
        # an all-day date is local midnight to midnight (SUMMARY by person id)
        ("bob", utc("2024-03-11T04:00"), utc("2024-03-12T04:00")),
        # RECURRENCE-ID moved the second occurrence to Ada (address matched in any case)
        ("ada", utc("2024-03-18T12:00"), utc("2024-03-25T12:00")),
        ("cy", utc("2024-04-01T12:00"), utc("2024-04-08T12:00")),
    ]


def test_only_occurrences_in_the_window_are_imported() -> None:
    april = Window(utc("2024-03-26T00:00"), utc("2024-04-30T00:00"))
    assert [s.person for s in read("amion_weekly.ics", april)] == ["cy"]


def test_an_unknown_person_names_the_event_uid_and_its_line() -> None:
    with pytest.raises(IcalError) as caught:
        read("unknown_person.ics")
    message = str(caught.value)
    # line 13: the second BEGIN:VEVENT (the folded DESCRIPTION above counts as two lines)
    assert "unknown_person.ics line 13: event UID stranger@qgenda.example" in message
    assert "SUMMARY 'ICU Day: Grace Hopper'" in message


def test_a_person_without_a_contact_on_the_page_channels_is_refused() -> None:
    data = (FIXTURES / "amion_weekly.ics").read_bytes().replace(b"cy@hospital", b"dee@hospital")
    with pytest.raises(IcalError, match="'dee' has no contact on the team's page channels"):
        shifts_from_ical(data, routing(), team="icu", tier=1, window=MARCH, zone=NY, source="x")


def test_not_a_calendar_is_one_sentence() -> None:
    with pytest.raises(IcalError, match="x.ics: not an iCalendar file"):
        shifts_from_ical(b"hello", routing(), team="icu", tier=1, window=MARCH, zone=NY,
                         source="x.ics")  # fmt: skip


def test_imported_shifts_decide_who_is_on_call() -> None:
    state = replace_shifts(RosterState(), "icu", 1, read("qgenda_nights.ics"))
    schedule = apply_state(routing(), state).teams["icu"].schedule
    assert schedule.on_call(1, utc("2024-03-10T23:00")) == "ada"  # a night shift
    assert schedule.on_call(1, utc("2024-03-10T16:00")) == "bob"  # daytime: the rotation
