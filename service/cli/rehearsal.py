"""``labsentinel escalations run [--at TIME] [--dry-run]``: the escalation job once, or a
rehearsal of it (``--dry-run``) that does none of it.

A real run refuses a time in the future: it would page now and stamp the future on the alerts.

The preview prints per alert: the step (escalate, repeat, ack-timeout, exhausted, or a stop for
corrective therapy), the tier, the team, the people and each (channel, address) the page
would go to. Nothing is paged and nothing is written: no notifications, no history events, no
state, not even a migration of an older schema.
"""

from __future__ import annotations

from datetime import UTC, datetime

from service.runtime.settings import ConfigError, Settings


def escalations_run(settings: Settings, at: datetime, *, at_text: str | None, dry_run: bool) -> int:
    """``escalations run``: one run of the job at ``at``, or its preview. Raises ConfigError
    (a future time without ``dry_run``, the routing file) and SQLAlchemyError."""
    if dry_run:
        return escalations_preview(settings, at)
    if at > datetime.now(UTC):
        raise ConfigError(
            f"--at {at_text} is in the future: a real run pages now; add --dry-run to rehearse"
        )
    from service.bootstrap import open_database
    from service.notify.escalation import run_escalations

    engine = open_database(settings)
    try:
        report = run_escalations(engine, settings, at)
    finally:
        engine.dispose()
    print(
        f"escalations: {len(report.escalated)} steps, {len(report.stopped)} stopped, "
        f"{len(report.exhausted)} exhausted"
    )
    return 0


def escalations_preview(settings: Settings, at: datetime) -> int:
    """``escalations run --dry-run``: the next step of each alert at ``at``, read only."""
    from service.bootstrap import open_database
    from service.notify.escalation_steps import preview
    from service.notify.routed import RoutedPaging, paging_for

    paging = paging_for(settings)
    if not isinstance(paging, RoutedPaging):
        print("dry run: no routing file (routing.config), so nothing escalates")
        return 0
    # No migration either: a rehearsal leaves the database exactly as it found it.
    engine = open_database(settings, migrate=False)
    try:
        steps = preview(engine, paging.config, at)
    finally:
        engine.dispose()
    zone = settings.hospital.zone
    print(f"dry run at {at.astimezone(zone).isoformat()}: nothing is paged or written")
    for s in steps:
        channels = ", ".join(f"{ch}={addr}" for ch, addr in s.deliveries) or "-"
        who = ",".join(s.recipients) or "-"
        tier = f"tier {s.tier}" if s.tier else "-"
        note = f" ({s.note})" if s.note else ""
        print(
            f"  alert {s.alert_id} {s.severity:<8} {s.kind:<11} {tier:<7} team={s.team} "
            f"to={who} via {channels}{note}"
        )
    print(f"{len(steps)} alerts would change (one step each: the job takes one step per run)")
    return 0
