"""On-call shifts from an iCalendar export (QGenda, Amion): VEVENTs → ``ShiftEntry``. Pure.

Scheduling systems export on-call as one VEVENT per shift (or a recurring one): the person in
SUMMARY ("ICU on call: Dr A") or as an ATTENDEE (``CN=`` and a ``mailto:`` address), times
with a TZID backed by a VTIMEZONE, RRULE/RDATE repeats with EXDATE exceptions and moved
occurrences (RECURRENCE-ID). Parsing that by hand is where rosters go wrong (folded lines,
VTIMEZONE rules, DST arithmetic of an RRULE, EXDATE matching), so two well-kept libraries do
it: ``icalendar`` (the RFC 5545 parser of the Plone/collective community, VTIMEZONE support)
and ``recurring-ical-events`` (built on it and dateutil; expands RRULE, RDATE, EXDATE and
RECURRENCE-ID in the event's own zone, so a weekly 08:00 shift stays 08:00 across a DST
change). This module only maps each occurrence to a person of the routing file and to UTC.

A person is found by an ATTENDEE first (its address among a person's contacts, or its CN as
a person's id or name), else by the SUMMARY (the whole text or the part after its last ":"
or " - ", as a person's id or name); case does not matter. An event naming nobody known, or
two different people, is an error naming the event's UID and its line in the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

from alerts.roster_state import RosterError, ShiftEntry, check_entry
from alerts.routing import Person, RoutingConfig


class IcalError(ValueError):
    """The file cannot be read as a roster; the message names the event (UID, line)."""


@dataclass(frozen=True)
class Window:
    """The span occurrences are expanded over (recurring events may never end)."""

    start: datetime
    end: datetime


def shifts_from_ical(
    data: bytes,
    routing: RoutingConfig,
    *,
    team: str,
    tier: int,
    window: Window,
    zone: ZoneInfo,
    source: str,
) -> list[ShiftEntry]:
    """The shifts of ``data`` overlapping ``window`` for ``team``'s ``tier``, sorted by start.

    Floating times and all-day dates are local to ``zone``. Cancelled events are skipped.
    Raises IcalError naming the event's UID and line (unknown person, no end), or the file.
    """
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise IcalError(f"{source}: not an iCalendar file ({_first_line(exc)})") from None
    lines = _event_lines(data)
    try:
        occurrences = list(recurring_ical_events.of(calendar).between(window.start, window.end))
    except Exception as exc:  # the library raises its own classes for bad RRULE/dates
        raise IcalError(f"{source}: cannot expand the events ({_first_line(exc)})") from None
    shifts = []
    for event in occurrences:
        uid = str(event.get("UID", ""))
        where = f"{source} line {lines.get(uid, '?')}: event UID {uid or '(none)'}"
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start = _instant(event.get("DTSTART"), zone, where, "DTSTART")
        end = _end(event, start, zone, where)
        person = _person(event, routing.people, where)
        shift = ShiftEntry(
            team=team, tier=tier, person=person, start=start, end=end, source=f"{source} {uid}"
        )
        try:
            check_entry(routing, shift, where)
        except RosterError as exc:
            raise IcalError(str(exc)) from None
        shifts.append(shift)
    shifts.sort(key=lambda s: (s.start, s.end))
    return shifts


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _event_lines(data: bytes) -> dict[str, int]:
    """UID → the line (1-based, in the file as written) of the first VEVENT carrying it."""
    text = data.decode("utf-8", errors="replace")
    found: dict[str, int] = {}
    begin = 0
    logical: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if raw[:1] in (" ", "\t") and logical:  # a folded continuation (RFC 5545 3.1)
            first, so_far = logical[-1]
            logical[-1] = (first, so_far + raw[1:])
        else:
            logical.append((number, raw))
    for number, line in logical:
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if line.upper() == "BEGIN:VEVENT":
            begin = number
        elif name == "UID" and begin:
            found.setdefault(line.split(":", 1)[1].strip(), begin)
    return found


def _instant(prop: Any, zone: ZoneInfo, where: str, key: str) -> datetime:
    value = getattr(prop, "dt", prop)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    raise IcalError(f"{where}: no {key}")


def _end(event: Any, start: datetime, zone: ZoneInfo, where: str) -> datetime:
    if event.get("DTEND") is not None:
        end = _instant(event.get("DTEND"), zone, where, "DTEND")
    elif event.get("DURATION") is not None:
        end = start + event.get("DURATION").dt
    elif isinstance(getattr(event.get("DTSTART"), "dt", None), date) and not isinstance(
        event.get("DTSTART").dt, datetime
    ):
        end = _instant(event.get("DTSTART").dt + timedelta(days=1), zone, where, "DTSTART")
    else:
        raise IcalError(f"{where}: the shift has no DTEND or DURATION")
    if not start < end:
        raise IcalError(f"{where}: DTEND must be after DTSTART")
    return end


def _person(event: Any, people: Mapping[str, Person], where: str) -> str:
    attendees = event.get("ATTENDEE")
    if attendees is not None and not isinstance(attendees, list):
        attendees = [attendees]
    found: set[str] = set()
    for attendee in attendees or ():
        address = str(attendee).split(":", 1)[-1].strip().lower()
        cn = str(getattr(attendee, "params", {}).get("CN", ""))
        found |= _by_address(people, address) or _by_label(people, [cn])
    tried = [f"ATTENDEE {str(a)!r}" for a in attendees or ()]
    if not found:
        summary = str(event.get("SUMMARY", "")).strip()
        found = _by_label(people, _summary_parts(summary))
        tried.append(f"SUMMARY {summary!r}")
    if len(found) > 1:
        raise IcalError(f"{where}: names more than one person ({', '.join(sorted(found))})")
    if not found:
        raise IcalError(
            f"{where}: no person of the routing file matches {' or '.join(tried)} "
            "(add them under [people], by id, name or contact address)"
        )
    return found.pop()


def _summary_parts(summary: str) -> list[str]:
    parts = [summary]
    for separator in (":", " - ", " – "):
        if separator in summary:
            parts.append(summary.rsplit(separator, 1)[1])
    return parts


def _by_address(people: Mapping[str, Person], address: str) -> set[str]:
    if not address:
        return set()
    return {
        pid
        for pid, person in people.items()
        if address in (a.strip().lower() for a in person.contacts.values())
    }


def _by_label(people: Mapping[str, Person], labels: Iterable[str]) -> set[str]:
    wanted = {label.strip().lower() for label in labels if label.strip()}
    return {
        pid
        for pid, person in people.items()
        if pid.lower() in wanted or (person.name and person.name.strip().lower() in wanted)
    }
