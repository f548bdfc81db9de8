"""The verdict on a scenario: every planted case paged, nothing lost, repeats with one key.

``audit_run`` reads the ``--pages-out`` files of every daemon and the database's notifications,
outbox and delivery attempts, and counts what the guarantees forbid. Blocking (database).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from service.bootstrap import build_clinical
from service.ingest.messages import Incoming
from service.ingest.staging import Stager
from service.runtime.clock import MessageClock, WallClock
from service.runtime.settings import load_settings
from service.tools.feedgen import FeedRecord, PlantedCase


@dataclass
class Audit:
    """What a scenario's end state says; ``ok`` is the pass/fail of the guarantees."""

    messages: int
    planted: int
    paged: int  # planted cases with an `alert` page
    lost: int  # planted cases not paged + notifications never delivered
    duplicated: int  # extra deliveries of an already delivered notification (same dedup key)
    doubled: int  # planted cases with more than one distinct `alert` notification
    unexpected: int  # alert pages for a patient/analyte that was not planted
    inconsistent_keys: int  # planted cases paged under more than one dedup key
    failed_deliveries: int
    dead_letters: int
    details: list[str] = field(default_factory=list)
    # Messages of the feed (not garbage) whose sender + MSH-10 never reached processed_messages:
    # skipped, whatever the committed offsets say.
    skipped: int = 0
    # Times the daemon under test was started again or found dead (scenarios that promise
    # it stays up set this; the others restart it on purpose).
    restarts: int = 0

    @property
    def ok(self) -> bool:
        return (
            self.paged == self.planted
            and not self.lost
            and not self.doubled
            and not self.unexpected
            and not self.inconsistent_keys
            and not self.failed_deliveries
            and not self.skipped
            and not self.restarts
        )


@dataclass
class ScenarioResult:
    fault: str
    injected: int  # faults really delivered (kills, stops, cut connections, failed requests)
    audit: Audit
    seconds: float
    notes: str = ""

    def row(self) -> dict[str, Any]:
        a = self.audit
        return {
            "fault": self.fault,
            "injected": self.injected,
            "messages": a.messages,
            "planted": a.planted,
            "paged": a.paged,
            "lost": a.lost,
            "duplicated": a.duplicated,
            "doubled": a.doubled,
            "dead_letters": a.dead_letters,
            "skipped": a.skipped,
            "restarts": a.restarts,
            "seconds": round(self.seconds, 1),
            "ok": a.ok,
            "notes": self.notes,
        }


def read_pages(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], int]:
    """Every JSON line of every file, and how many lines were torn (not JSON)."""
    pages, torn = [], 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                pages.append(json.loads(line))
            except json.JSONDecodeError:
                torn += 1
    return pages, torn


def audit_run(
    engine: Engine,
    *,
    pages_files: Sequence[Path],
    planted_cases: Iterable[PlantedCase],
    published: int,
    channel: str = "pages-out",
    records: Sequence[FeedRecord] = (),
) -> Audit:
    """Audit the end state of one scenario (see the module docstring); ``records`` (the feed
    as published) are checked for a processed_messages row each. Blocking."""
    pages, torn = read_pages(pages_files)
    with engine.connect() as connection:
        notifications = connection.execute(
            text("SELECT notification_id, dedup_key FROM notifications")
        ).all()
        outbox = connection.execute(
            text("SELECT id, notification_id, status FROM outbox WHERE channel = :c"),
            {"c": channel},
        ).all()
        delivered: dict[int, int] = dict(
            connection.execute(
                text(
                    "SELECT outbox_id, count(*) FROM delivery_attempts "
                    "WHERE outcome = 'delivered' GROUP BY outbox_id"
                )
            ).all()
        )
        failed = connection.execute(
            text("SELECT count(*) FROM outbox WHERE status = 'failed'")
        ).scalar_one()
        dead = connection.execute(text("SELECT count(*) FROM dead_letters")).scalar_one()
        processed = set(
            connection.execute(
                text("SELECT sending_facility, control_id FROM processed_messages")
            ).all()
        )
    planted = {(c.patient_id, c.analyte) for c in planted_cases}
    alerts = [p for p in pages if p.get("event") == "alert"]
    by_case: dict[tuple[str, str], set[str]] = {}
    keys_by_case: dict[tuple[str, str], set[str]] = {}
    for page in alerts:
        case = (page["patient"]["id"], page["analyte"])
        by_case.setdefault(case, set()).add(page["notification_id"])
        keys_by_case.setdefault(case, set()).add(page["dedup_key"])
    line_counts = Counter(p.get("notification_id") for p in pages)
    page_ids = set(line_counts)
    db_keys: dict[str, str] = dict(notifications)  # type: ignore[arg-type]
    channel_ids = {row.notification_id for row in outbox}
    undelivered = channel_ids - page_ids
    unsent = [row for row in outbox if row.status != "sent"]
    details = []
    missing = planted - set(by_case)
    if missing:
        details.append(f"planted cases never paged: {sorted(missing)}")
    if undelivered:
        details.append(f"notifications in the database but in no pages file: {len(undelivered)}")
    if unsent:
        details.append(f"outbox rows not sent: {[(r.id, r.status) for r in unsent][:10]}")
    skipped = expected_messages(records) - {tuple(row) for row in processed}
    if skipped:
        details.append(f"feed messages never processed (skipped): {len(skipped)}")
    if torn:
        details.append(f"torn lines in pages files: {torn}")
    wrong_key = [
        p for p in pages if db_keys.get(str(p.get("notification_id"))) != p.get("dedup_key")
    ]
    if wrong_key:
        details.append(f"pages whose dedup_key differs from the database: {len(wrong_key)}")
    duplicated = sum(n - 1 for n in line_counts.values() if n > 1)
    duplicated += sum(n - 1 for n in delivered.values() if n > 1)
    return Audit(
        messages=published,
        planted=len(planted),
        paged=len(planted & set(by_case)),
        lost=len(missing) + len(undelivered | {r.notification_id for r in unsent}),
        duplicated=duplicated,
        doubled=sum(1 for case in planted if len(by_case.get(case, ())) > 1),
        unexpected=len(set(by_case) - planted),
        inconsistent_keys=sum(1 for keys in keys_by_case.values() if len(keys) > 1)
        + len(wrong_key),
        failed_deliveries=int(failed),
        dead_letters=int(dead),
        details=details,
        skipped=len(skipped),
    )


def expected_messages(records: Iterable[FeedRecord]) -> set[tuple[str, str]]:
    """Sender (MSH-4.1) and MSH-10 of each record of the feed that must reach the database:
    what processed_messages holds once everything was read, whatever the faults.

    The oracle is the pipeline's own first step (``Stager``, pure: parse, catalogue, units)
    with the shipped clinical configuration: a message it decides alone (ignored as
    irrelevant, or a dead letter) leaves no processed_messages row, every other one claims
    exactly one (a duplicate shares its original's). Blocking (reads the catalogues)."""
    settings = load_settings(overrides={"routing": {"default_channels": []}})
    stager = Stager(build_clinical(settings), MessageClock(), WallClock(), 2**31)
    keys = set()
    for record in records:
        staged = stager.stage(Incoming(raw=record.value))
        if staged.result is None and staged.parsed is not None:
            header = staged.parsed.header
            keys.add((header.sending_facility, header.control_id))
    return keys
