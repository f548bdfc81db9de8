"""CLI commands of this concern (see service/cli/__init__.py for the contract).

``oncall show TEAM [--at TIME]``, ``send-test-page TEAM``, ``alerts list|ack``,
``silence add|list|expire``, ``history ALERT``, ``escalations run [--at TIME]``.
Times are ISO 8601; without an offset they are local to ``hospital.timezone``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.oncall import parse_local
from service.cli import roster
from service.cli.operator import operator_account
from service.runtime.settings import ConfigError, Settings

# The handlers import the notify and database modules they use inside themselves, to keep
# start-up light: every command (and `--help`) imports this module to register its parsers.
COMMANDS: tuple[str, ...] = (
    "oncall",
    "send-test-page",
    "alerts",
    "silence",
    "history",
    "escalations",
)


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    config_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    oncall = sub.add_parser("oncall", help="who is on call")
    oncall_sub = oncall.add_subparsers(dest="oncall_command", required=True)
    show = oncall_sub.add_parser("show", help="print each tier's on-call person for a team")
    show.add_argument("team", help="team id from the routing file")
    show.add_argument("--at", help="ISO time (default now; local to hospital.timezone)")
    config_args(show)
    roster.register_oncall(oncall_sub, config_args)  # override, overrides, import-ical

    test = sub.add_parser("send-test-page", help="page a team's tier-1 on-call over each channel")
    test.add_argument("team", help="team id from the routing file")
    test.add_argument("--tier", type=int, default=1, help="which tier's on-call to page (1)")
    config_args(test)

    alerts = sub.add_parser("alerts", help="the worklist: list and acknowledge alerts")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    listing = alerts_sub.add_parser("list", help="open alerts (and failed deliveries)")
    listing.add_argument("--all", action="store_true", help="include resolved alerts")
    listing.add_argument("--json", action="store_true", help="a JSON list instead of lines")
    config_args(listing)
    ack = alerts_sub.add_parser(
        "ack",
        help="acknowledge an alert with what was done",
        epilog=_ack_actions_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ack.add_argument("alert_id", type=int, help="the alert's id (from `alerts list`)")
    ack.add_argument("--action", required=True, help="what was done: one of the actions below")
    ack.add_argument("--note", default="", help="free text kept with the acknowledgement")
    ack.add_argument(
        "--by",
        required=True,
        help="who acknowledges (recorded with the operating-system account that ran the command)",
    )
    config_args(ack)

    silence = sub.add_parser("silence", help="mute pages by patient, unit or rule")
    silence_sub = silence.add_subparsers(dest="silence_command", required=True)
    add = silence_sub.add_parser("add", help="mute a patient, a unit or a rule for a time")
    add.add_argument("--patient", default="", help="patient key: PID-3.1, then ^PID-3.4 if set")
    add.add_argument("--unit", default="", help="point of care (PV1-3.1), e.g. 4W")
    add.add_argument("--rule", default="", help="rule id, e.g. iron-antiresorptive-mineral")
    add.add_argument("--hours", type=float, help="expires after this many hours")
    add.add_argument("--until", help="expires at this ISO time")
    add.add_argument("--author", required=True, help="who silences (recorded)")
    add.add_argument("--reason", required=True, help="why (recorded, shown with the silence)")
    config_args(add)
    sil_list = silence_sub.add_parser("list", help="active silences (all with --all)")
    sil_list.add_argument("--all", action="store_true", help="include expired silences")
    config_args(sil_list)
    expire = silence_sub.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id", type=int, help="the silence's id (from `silence list`)")
    config_args(expire)

    history = sub.add_parser("history", help="every notification, attempt, ack, escalation")
    history.add_argument("alert_id", type=int, help="the alert's id (from `alerts list`)")
    history.add_argument("--json", action="store_true", help="a JSON list instead of lines")
    config_args(history)

    escalations = sub.add_parser("escalations", help="run the escalation job once")
    esc_sub = escalations.add_subparsers(dest="escalations_command", required=True)
    run = esc_sub.add_parser(
        "run", help="take every escalation step due now (or at --at), as the daemon's job does"
    )
    run.add_argument(
        "--at",
        help="ISO time to judge at (default now; local to hospital.timezone). A time in the "
        "future needs --dry-run",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the step each alert would take (alert, tier, team, channel) without paging "
        "or writing anything",
    )
    config_args(run)


def _ack_actions_epilog() -> str:
    from service.notify.ack_tokens import ACK_ACTIONS

    width = max(len(key) for key in ACK_ACTIONS)
    rows = "\n".join(f"  {key:<{width}}  {label}" for key, label in ACK_ACTIONS.items())
    return f"actions (--action):\n{rows}"


def handle(args: argparse.Namespace, settings: Settings) -> int:
    handlers = {
        "oncall": _oncall,
        "send-test-page": _send_test_page,
        "alerts": _alerts,
        "silence": _silence,
        "history": _history,
        "escalations": _escalations,
    }
    return handlers[args.command](args, settings)


def _at(text: str | None, settings: Settings) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        return parse_local(text, settings.hospital.zone)
    except ValueError:
        raise ConfigError(f"not an ISO 8601 time: {text!r}") from None


def _routing(settings: Settings) -> Any:
    """The routing file's teams and schedules over the enabled channels. Raises ConfigError
    (also when ``routing.config`` is empty: these commands need a routing file)."""
    from service.notify.delivery import load_team_routing

    channels = [name for name, ch in settings.channels.items() if ch.enabled]
    return load_team_routing(settings, channels).routing


def _engine(settings: Settings) -> Any:
    from service.bootstrap import open_database

    return open_database(settings)


def _oncall(args: argparse.Namespace, settings: Settings) -> int:
    if args.oncall_command in roster.ONCALL_COMMANDS:
        return roster.handle_oncall(args, settings)
    routing = _routing(settings)
    team = routing.teams.get(args.team)
    if team is None:
        print(
            f"labsentinel: no team {args.team!r} (teams: {', '.join(routing.teams)})",
            file=sys.stderr,
        )
        return 1
    at = _at(args.at, settings)
    zone = settings.hospital.zone
    print(f"{team.name or team.id} on call at {at.astimezone(zone).isoformat()} ({zone.key}):")
    for tier in range(1, team.schedule.tier_count + 1):
        person_id = team.schedule.on_call(tier, at)
        person = routing.people[person_id]
        contacts = ", ".join(f"{ch}={addr}" for ch, addr in person.contacts.items())
        until = team.schedule.next_handoff(tier, at).astimezone(zone).isoformat()
        print(f"  tier {tier}: {person_id} ({person.name}) [{contacts}] until {until}")
    return 0


def _send_test_page(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.notification import Notification
    from service.bootstrap import build_transports, channel_settings

    routing = _routing(settings)
    if args.team not in routing.teams:
        print(f"labsentinel: no team {args.team!r}", file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    target = routing.target(args.team, "high", now, tier=args.tier)
    notification = Notification(
        notification_id=f"test-{args.team}-{int(now.timestamp())}",
        event="advisory",
        rule="test-page",
        severity="high",
        dedup_key=f"test-{args.team}",
        patient_id="TEST",
        patient_location="",
        analyte=None,
        value=None,
        unit="",
        reference_range="",
        observed_at=None,
        iron=None,
        antiresorptive=None,
        recipients=target.recipients,
        created_at=now.isoformat(),
        actions=("LabSentinel test page: no action needed",),
    )
    channels = channel_settings(settings, None)
    transports = build_transports({c: channels[c] for c, _ in target.deliveries if c in channels})

    async def send_all() -> list[tuple[str, str, Any]]:
        try:
            results = await asyncio.gather(
                *(transports[c].send(notification, r) for c, r in target.deliveries)
            )
        finally:
            for transport in transports.values():
                await transport.close()
        return [(c, r, res) for (c, r), res in zip(target.deliveries, results, strict=True)]

    ok = True
    for channel, recipient, result in asyncio.run(send_all()):
        ok = ok and result.outcome.value == "delivered"
        print(f"{channel} -> {recipient}: {result.outcome.value} {result.detail}".rstrip())
    return 0 if ok and target.deliveries else 1


def _escalation_step(doc: dict[str, Any]) -> str:
    """``policy/tier N``; a worklist-only alert has no escalation policy, only its tier."""
    return f"{doc['escalation']}/tier {doc['tier']}" if doc["escalation"] else f"tier {doc['tier']}"


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    from service.db.models import Alert

    engine = _engine(settings)
    try:
        if args.alerts_command == "ack":
            from service.notify.acknowledge import AlertNotFound, UnknownAction, acknowledge

            try:
                result = acknowledge(
                    engine,
                    alert_id=args.alert_id,
                    who=f"{args.by} [{operator_account()}]",
                    action=args.action,
                    note=args.note,
                    now=datetime.now(UTC),
                    source="cli",
                )
            except AlertNotFound:
                print(f"labsentinel: no alert {args.alert_id}", file=sys.stderr)
                return 1
            except UnknownAction:
                from service.notify.ack_tokens import ACK_ACTIONS

                print(
                    f"labsentinel: unknown action; one of: {', '.join(ACK_ACTIONS)}",
                    file=sys.stderr,
                )
                return 1
            if result.already_acknowledged:
                print(
                    f"alert {result.alert_id} was already acknowledged by {result.acked_by} "
                    f"at {result.acked_at.isoformat()} ({result.action})"
                )
            else:
                print(f"alert {result.alert_id} acknowledged ({result.action})")
            return 0
        with Session(engine) as session:
            query = select(Alert).order_by(col(Alert.id))
            if not args.all:
                query = query.where(col(Alert.status) != "resolved")
            rows = session.execute(query).scalars().all()
        docs = [
            {
                "id": r.id,
                "status": r.status,
                "severity": r.severity,
                "analyte": r.analyte,
                "value": r.value,
                "unit": r.unit,
                "patient": r.patient_id,
                "location": r.location,
                "team": r.team,
                "escalation": r.escalation_state,
                "tier": r.escalation_tier,
                "acked_by": r.acked_by,
                "ack_action": r.ack_action,
                "corrective": r.corrective_drug,
                "silenced": r.silence_id is not None,
                "delivery_failed": r.delivery_failed_at is not None,
            }
            for r in rows
        ]
        if args.json:
            print(json.dumps(docs, indent=2, default=str))
            return 0
        for d in docs:
            flags = [k for k in ("silenced", "delivery_failed") if d[k]]
            if d["corrective"]:
                flags.append(f"corrective={d['corrective']}")
            if d["acked_by"]:
                flags.append(f"acked by {d['acked_by']} ({d['ack_action']})")
            print(
                f"{d['id']:>5} {d['status']:<9} {d['severity']:<8} {d['analyte']:<16} "
                f"{d['value']} {d['unit']:<7} {d['patient']} @ {d['location']} team={d['team']} "
                f"{_escalation_step(d)} {' '.join(flags)}".rstrip()
            )
        return 0
    finally:
        engine.dispose()


def _silence(args: argparse.Namespace, settings: Settings) -> int:
    from service.notify.silences import SilenceError, add_silence, expire_silence, list_silences

    engine = _engine(settings)
    now = datetime.now(UTC)
    try:
        if args.silence_command == "add":
            if args.until:
                expires = _at(args.until, settings)
            elif args.hours:
                expires = now + timedelta(hours=args.hours)
            else:
                print("labsentinel: give --hours or --until", file=sys.stderr)
                return 1
            try:
                view = add_silence(
                    engine,
                    author=args.author,
                    reason=args.reason,
                    now=now,
                    expires_at=expires,
                    patient_id=args.patient,
                    unit=args.unit,
                    rule=args.rule,
                )
            except SilenceError as exc:
                print(f"labsentinel: {exc}", file=sys.stderr)
                return 1
            print(f"silence {view.id} until {view.expires_at.isoformat()}")
            return 0
        if args.silence_command == "expire":
            try:
                view = expire_silence(engine, args.silence_id, now)
            except SilenceError as exc:
                print(f"labsentinel: {exc}", file=sys.stderr)
                return 1
            print(f"silence {view.id} expired")
            return 0
        for v in list_silences(engine, now, include_expired=args.all):
            state = "active" if v.active(now) else "expired"
            print(
                f"{v.id:>4} {state:<7} patient={v.patient_id or '*'} unit={v.unit or '*'} "
                f"rule={v.rule or '*'} until {v.expires_at.isoformat()} by {v.author}: {v.reason}"
            )
        return 0
    finally:
        engine.dispose()


def _history(args: argparse.Namespace, settings: Settings) -> int:
    from service.notify.history import alert_history

    engine = _engine(settings)
    try:
        entries = alert_history(engine, args.alert_id)
    finally:
        engine.dispose()
    if entries is None:
        print(f"labsentinel: no alert {args.alert_id}", file=sys.stderr)
        return 1
    if args.json:
        docs = [
            {"at": e.at.isoformat(), "kind": e.kind, "summary": e.summary, "detail": e.detail}
            for e in entries
        ]
        print(json.dumps(docs, indent=2, default=str))
        return 0
    for e in entries:
        print(f"{e.at.isoformat()}  {e.kind:<20} {e.summary}")
    return 0


def _escalations(args: argparse.Namespace, settings: Settings) -> int:
    from service.cli.rehearsal import escalations_run

    return escalations_run(settings, _at(args.at, settings), at_text=args.at, dry_run=args.dry_run)
