"""Rehearsals that harm nobody: ``labsentinel escalations run [--at TIME] [--dry-run]`` (the
escalation job once, or a preview of it that does none of it), and the guard of
``labsentinel replay --no-deliver``.

A real run refuses a time in the future: it would page now and stamp the future on the alerts.

The preview prints per alert: the step (escalate, repeat, ack-timeout, exhausted, or a stop for
corrective therapy), the tier, the team, the people and each (channel, address) the page
would go to. Nothing is paged and nothing is written: no notifications, no history events, no
state, not even a migration of an older schema.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from service.runtime.settings import ConfigError, Settings, load_settings


def require_rehearsal_database(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse ``replay --no-deliver`` where it could reach someone.

    A rehearsal writes alerts, history and outbox rows like a real run. In the live database
    its alerts would reach the worklist, and the running daemon's dispatcher would deliver the
    pages it queued. So it runs in a database named with ``--database-url`` other than
    ``database.url``, or in one that holds no processed message yet (an empty database is no
    live one, and the contract's ``replay --no-deliver`` on a fresh database keeps working).
    Raises ConfigError; reads the database (DBAPIError when it is unreachable).
    """
    if args.pages_out is None:
        raise ConfigError("--no-deliver needs --pages-out: it is where the pages go")
    configured = load_settings(getattr(args, "config", None)).database.url
    if args.database_url and args.database_url != configured:
        return
    if holds_messages(settings.database.url):
        raise ConfigError(
            "--no-deliver needs a --database-url of its own (an empty database or a copy): "
            "database.url already holds messages, and there a rehearsal's alerts would reach "
            "the worklist and a running daemon would deliver its pages"
        )


def holds_messages(url: str) -> bool:
    """Whether the database at ``url`` has processed a message (a SQLite file that does not
    exist has not, and is not created)."""
    from sqlalchemy import inspect, text

    from service.db.engine import make_engine, sqlite_file

    path = sqlite_file(url)
    if path is not None and not path.exists():
        return False
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("processed_messages"):
                return False
            query = text("SELECT 1 FROM processed_messages LIMIT 1")
            return connection.execute(query).first() is not None
    finally:
        engine.dispose()


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
