"""CLI commands for routing and rosters (see service/cli/__init__.py for the contract).

``routes test --location L --service S --severity high [--at TIME] [--json]``: which route,
team, tier and person a finding would page, and why (``alerts.route_explain``).
``oncall override --team T --person P --from TIME --until TIME [--tier N] [--reason R]``,
``oncall override --cancel ID``, ``oncall overrides [--all] [--json]`` and
``oncall import-ical FILE --team T --tier N``: roster changes, written beside the routing
file (``service.notify.rosters``); the running daemon takes them up on SIGHUP. ``oncall``
itself belongs to ``service.cli.paging``, which hands these subcommands here.
Times are ISO 8601; without an offset they are local to ``hospital.timezone``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.model import RULE_INTERACTION
from alerts.oncall import parse_local
from alerts.roster_state import NewOverride, RosterError, RosterState
from alerts.routing import RoutingConfig
from service.runtime.settings import ConfigError, Settings

COMMANDS: tuple[str, ...] = ("routes",)
ONCALL_COMMANDS = ("override", "overrides", "import-ical")
RELOAD_HINT = "the running daemon uses it after `kill -HUP <pid>` (or a restart)"

ConfigArgs = Callable[[argparse.ArgumentParser], None]


def register(sub: argparse._SubParsersAction, config_args: ConfigArgs) -> None:  # type: ignore[type-arg]
    routes = sub.add_parser("routes", help="routing: test which team and person a finding pages")
    routes_sub = routes.add_subparsers(dest="routes_command", required=True)
    test = routes_sub.add_parser(
        "test", help="which route, team, tier and person a finding would page, and why"
    )
    test.add_argument("--location", default="", help="point of care (PV1-3.1), e.g. ICU1/12/A")
    test.add_argument("--service", default="", help="hospital service (PV1-10), e.g. NEP")
    test.add_argument("--facility", default="", help="facility (PV1-3.4)")
    test.add_argument(
        "--severity",
        required=True,
        choices=("info", "warning", "high", "critical"),
        help="the finding's severity (high and critical page)",
    )
    test.add_argument(
        "--rule", default=RULE_INTERACTION, help=f"the rule (default {RULE_INTERACTION})"
    )
    test.add_argument("--analyte", default="", help="shown only: routes do not match on it")
    test.add_argument("--tier", type=int, default=1, help="escalation tier (default 1)")
    test.add_argument("--at", help="ISO time (default now; local to hospital.timezone)")
    test.add_argument("--json", action="store_true", help="the explanation as JSON")
    config_args(test)


def register_oncall(oncall_sub: argparse._SubParsersAction, config_args: ConfigArgs) -> None:  # type: ignore[type-arg]
    """The roster-changing subcommands of ``oncall`` (called by ``service.cli.paging``)."""
    override = oncall_sub.add_parser(
        "override", help="put a person on call for a team's tier for a time (or --cancel ID)"
    )
    override.add_argument("--team", help="team id (routing file [teams.ID])")
    override.add_argument("--person", help="person id (routing file [people.ID])")
    override.add_argument("--tier", type=int, default=1, help="tier (default 1)")
    override.add_argument("--from", dest="start", help="ISO start (local unless an offset)")
    override.add_argument("--until", help="ISO end, exclusive")
    override.add_argument("--reason", default="", help="why (no patient data)")
    override.add_argument("--cancel", metavar="ID", help="cancel the override with this id")
    config_args(override)
    listing = oncall_sub.add_parser("overrides", help="list roster overrides")
    listing.add_argument("--all", action="store_true", help="include past and cancelled ones")
    listing.add_argument("--json", action="store_true", help="the overrides as JSON")
    config_args(listing)
    ical = oncall_sub.add_parser(
        "import-ical", help="replace a tier's shifts with those of an iCalendar export"
    )
    ical.add_argument("file", type=Path, help=".ics file (QGenda, Amion, ...)")
    ical.add_argument("--team", required=True, help="team id (routing file [teams.ID])")
    ical.add_argument("--tier", type=int, required=True, help="the tier the shifts are for")
    ical.add_argument("--from", dest="start", help="ISO start of the import (default today)")
    ical.add_argument("--days", type=int, default=120, help="days imported (default 120)")
    ical.add_argument("--dry-run", action="store_true", help="print the shifts, write nothing")
    config_args(ical)


def handle(args: argparse.Namespace, settings: Settings) -> int:
    return _routes_test(args, settings)


def handle_oncall(args: argparse.Namespace, settings: Settings) -> int:
    handlers = {
        "override": _override,
        "overrides": _overrides,
        "import-ical": _import_ical,
    }
    return handlers[args.oncall_command](args, settings)


def _time(text: str | None, settings: Settings, option: str) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        return parse_local(text, settings.hospital.zone)
    except ValueError:
        raise ConfigError(f"{option}: not an ISO 8601 time: {text!r}") from None


def _load(settings: Settings) -> tuple[Path, RoutingConfig]:
    """The routing file and its routing with the roster changes (uncached)."""
    from service.notify.rosters import read_routing, routing_path

    path = routing_path(settings)
    channels = [name for name, ch in settings.channels.items() if ch.enabled]
    return path, read_routing(path, settings.hospital.zone, channels).routing


def _local(moment: datetime | None, settings: Settings) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(settings.hospital.zone).strftime("%Y-%m-%d %H:%M %Z")


# -- routes test ----------------------------------------------------------------------------


def _routes_test(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.route_explain import explain
    from alerts.routing import Subject

    _, routing = _load(settings)
    at = _time(args.at, settings, "--at")
    subject = Subject(
        rule=args.rule,
        severity=args.severity,
        location=args.location,
        facility=args.facility,
        service=args.service,
    )
    result = explain(routing, subject, at, tier=args.tier)
    if args.json:
        doc = result.as_dict()
        doc["subject"]["analyte"] = args.analyte
        print(json.dumps(doc, indent=2))
        return 0
    team = routing.teams[result.team]
    what = f"{args.severity} {args.analyte or args.rule}"
    print(f"Finding: {what} at location {args.location or '-'}, service {args.service or '-'}")
    print(f"At: {_local(at, settings)}")
    print("Routes (first match wins):")
    for check in result.checks:
        if check.matched:
            verdict = "MATCH"
        elif check.mismatched:
            verdict = "no: " + ", ".join(check.mismatched) + " did not match"
        else:
            verdict = "not reached"
        print(f"  [{check.index}] {check.name} -> {check.team}: {verdict}")
    via = f"route {result.route!r}" if result.route else "fallback"
    print(f"Team: {result.team} ({team.name or result.team}) by {via}")
    for fallback in result.fallbacks:
        print(f"Fallback: {fallback}")
    if not result.pages:
        print("Pages: no")
    else:
        print(f"Pages: yes, tier {result.tier} of {team.schedule.tier_count}")
    holder = result.on_call
    if holder is not None:
        print(f"On call: {holder.person} ({holder.name or holder.person})")
        print(f"  because: {holder.detail}")
        print(f"  until: {_local(holder.until, settings)}")
    deliveries = ", ".join(f"{c}={a}" for c, a in result.deliveries) or "none (worklist)"
    print(f"Deliveries: {deliveries}")
    for tier, person, minutes in result.escalation:
        print(f"Escalates if not acknowledged: tier {tier} ({person}) after {minutes:g} min")
    for note in result.notes:
        print(f"Note: {note}")
    return 0


# -- overrides ------------------------------------------------------------------------------


def _override(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.roster_state import add_override, cancel_override
    from service.notify.rosters import state_path, update_state

    path, routing = _load(settings)
    now = datetime.now(UTC)
    if args.cancel:
        update_state(path, lambda state: _guard(cancel_override, state, args.cancel, now))
        print(f"override {args.cancel} cancelled in {state_path(path)}; {RELOAD_HINT}")
        return 0
    given = {"--team": args.team, "--person": args.person, "--from": args.start}
    given["--until"] = args.until
    missing = [option for option, value in given.items() if not value]
    if missing:
        raise ConfigError(f"oncall override needs {', '.join(missing)} (or --cancel ID)")
    entry = NewOverride(
        team=args.team,
        tier=args.tier,
        person=args.person,
        start=_time(args.start, settings, "--from"),
        end=_time(args.until, settings, "--until"),
        reason=args.reason,
    )
    made: list[Any] = []

    def change(state: RosterState) -> RosterState:
        new, entry_made = _guard(add_override, state, routing, entry, now)
        made.append(entry_made)
        return new  # type: ignore[no-any-return]

    update_state(path, change)
    print(
        f"override {made[0].id}: {entry.person} on call for {entry.team} tier {entry.tier} "
        f"from {_local(entry.start, settings)} until {_local(entry.end, settings)} "
        f"(in {state_path(path)}); {RELOAD_HINT}"
    )
    if entry.end <= now:
        print("note: this override has already ended; it changes nobody's shift from now on")
    return 0


def _guard(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` with a RosterError turned into a ConfigError (exit status 2)."""
    try:
        return function(*args)
    except RosterError as exc:
        raise ConfigError(str(exc)) from None


def _overrides(args: argparse.Namespace, settings: Settings) -> int:
    from service.notify.rosters import read_state, routing_path, state_path

    state = read_state(state_path(routing_path(settings)))
    now = datetime.now(UTC)
    shown = [o for o in state.overrides if args.all or (o.active and o.end > now)]
    if args.json:
        print(json.dumps([o.model_dump(mode="json") for o in shown], indent=2))
        return 0
    if not shown:
        print("no overrides" + ("" if args.all else " now or to come (--all for past ones)"))
        return 0
    for o in shown:
        status = "cancelled" if not o.active else ("past" if o.end <= now else "active")
        reason = f" - {o.reason}" if o.reason else ""
        print(
            f"{o.id}  {o.team} tier {o.tier}: {o.person}  {_local(o.start, settings)} -> "
            f"{_local(o.end, settings)}  [{status}]{reason}"
        )
    return 0


# -- iCalendar import -----------------------------------------------------------------------


def _import_ical(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.roster_ical import IcalError, Window, shifts_from_ical
    from alerts.roster_state import replace_shifts
    from service.notify.rosters import state_path, update_state

    path, routing = _load(settings)
    team = routing.teams.get(args.team)
    if team is None:
        raise ConfigError(f"no team {args.team!r} (teams: {', '.join(routing.teams)})")
    if not 1 <= args.tier <= team.schedule.tier_count:
        raise ConfigError(f"team {args.team!r} has {team.schedule.tier_count} tier(s)")
    zone = settings.hospital.zone
    if args.start:
        start = _time(args.start, settings, "--from")
    else:
        today = datetime.now(UTC).astimezone(zone).date()
        start = datetime.combine(today, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    if args.days < 1:
        raise ConfigError("--days must be at least 1")
    try:
        data = args.file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no such file: {args.file}") from None
    try:
        shifts = shifts_from_ical(
            data,
            routing,
            team=args.team,
            tier=args.tier,
            window=Window(start, start + timedelta(days=args.days)),
            zone=zone,
            source=args.file.name,
        )
    except IcalError as exc:
        raise ConfigError(str(exc)) from None
    for shift in shifts:
        print(
            f"  {args.team} tier {args.tier}: {shift.person}  {_local(shift.start, settings)} -> "
            f"{_local(shift.end, settings)}"
        )
    if args.dry_run:
        print(f"{len(shifts)} shift(s) read from {args.file}; nothing written (--dry-run)")
        return 0
    update_state(path, lambda state: replace_shifts(state, args.team, args.tier, shifts))
    print(
        f"{len(shifts)} shift(s) of {args.team} tier {args.tier} imported into "
        f"{state_path(path)} (earlier imported shifts of that tier replaced); {RELOAD_HINT}"
    )
    return 0
