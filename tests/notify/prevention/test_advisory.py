"""Order-time advisory (issue #4 item 1) through the real pipeline, clock passed in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from service.bootstrap import App, build_app
from service.db.models import NotificationRow, OutboxRow
from service.db.prevention import AdvisoryRow
from service.ingest.pipeline import Incoming
from service.runtime.clock import FixedClock
from service.runtime.settings import load_settings
from tests.messages import DENOSUMAB, FERROUS_SULFATE, rde

from .episode import MRN, T0, calcium, day, phosphate

AFTER = timedelta(minutes=5)


def _app(database_url: str, routing: Path | None = None) -> App:
    overrides: dict = {"database": {"url": database_url}}  # type: ignore[type-arg]
    if routing is not None:
        overrides["routing"] = {"config": str(routing)}
    return build_app(load_settings(overrides=overrides), clock=FixedClock(T0), transports={})


@pytest.fixture
def app(sqlite_url: str) -> Iterator[App]:
    built = _app(sqlite_url)
    yield built
    built.close()


def feed(app: App, *messages: tuple[datetime, bytes]) -> None:
    clock = app.pipeline.clock
    assert isinstance(clock, FixedClock)
    for moment, raw in messages:
        clock.moment = moment
        app.pipeline.process(Incoming(raw, source="replay"))


def advisories(app: App) -> tuple[list[AdvisoryRow], list[dict]]:  # type: ignore[type-arg]
    with Session(app.engine) as session:
        rows = list(session.exec(select(AdvisoryRow)).all())
        sent = session.exec(select(NotificationRow).where(NotificationRow.event == "advisory"))
        return rows, [json.loads(n.payload) for n in sent]


DENO = (day(-60), rde(MRN, day(-60), drug=DENOSUMAB, route="SC"))
FCM = (T0, rde(MRN, T0))

CASES = [
    # Iron ordered while denosumab is in effect: sent when the order arrives.
    ("iron under denosumab", [DENO, FCM], "sent", 1),
    # Denosumab ordered inside an open iron window counts too (trigger = the denosumab).
    ("denosumab inside iron window", [FCM, (day(5), rde(MRN, day(5), drug=DENOSUMAB,
                                                        route="SC"))], "sent", 1),
    # A second dose of the same episode sends nothing more: once per iron episode.
    ("second dose same episode", [DENO, FCM, (day(10), rde(MRN, day(10)))], "sent", 1),
    # The order arrives 10 days after the dose (> advisory_late_days): worklist, silent.
    ("late order", [DENO, (day(10), rde(MRN, T0, sent=day(10)))], "worklist", 0),
    # Iron alone: no interaction, no advisory.
    ("iron alone", [FCM], None, 0),
    # Oral iron is not IV iron (CLINICAL.md: only parenteral iron counts).
    ("oral iron", [DENO, (T0, rde(MRN, T0, drug=FERROUS_SULFATE, route="PO"))], None, 0),
]  # fmt: skip


@pytest.mark.parametrize(("name", "messages", "status", "sent"), CASES, ids=[c[0] for c in CASES])
def test_advisory_cases(app: App, name: str, messages: list, status: str | None, sent: int) -> None:  # type: ignore[type-arg]
    feed(app, *messages)
    rows, payloads = advisories(app)
    assert [r.status for r in rows] == ([status] if status else [])
    assert len(payloads) == sent
    for page in payloads:
        assert (page["event"], page["severity"]) == ("advisory", "info")
        assert page["rule"] == "iron-antiresorptive-advisory"
        assert page["recipients"] == ["pharmacy"]  # the fallback team: pharmacy on-call


def test_advisory_carries_latest_labs_or_says_none(app: App) -> None:
    feed(app, DENO, (day(-6), phosphate(day(-6), "3.4")), FCM)
    _, [page] = advisories(app)
    assert page["phosphate"]["value"] == 3.4
    assert page["phosphate"]["observed_at"] == day(-6).isoformat()
    assert page["calcium"] == {"value": None, "note": "none in the last 30 days"}
    assert "derisomaltose" in " ".join(page["actions"])  # FCM is high risk: name the alternative
    assert page["iron"]["drug"].lower() == "ferric carboxymaltose"
    assert page["antiresorptive"]["drug"].lower().startswith("denosumab")
    assert "hypophosphatemia" in page["interaction"]
    assert page["ordering_provider"] == "1234567"


def test_advisory_is_not_a_page_and_reaches_the_audit_channel(app: App) -> None:
    feed(app, DENO, FCM)
    with Session(app.engine) as session:
        rows = session.exec(select(OutboxRow)).all()
    # No paging channel delivery: the pharmacy team has no `notify` address in the shipped
    # routing, so only the audit channel (console) receives it, addressed to the team.
    assert [(r.channel, r.recipient) for r in rows] == [("console", "pharmacy")]


def test_ordering_provider_receives_it_when_routing_knows_them(
    sqlite_url: str, tmp_path: Path
) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(
        "[policies.p]\ncritical_minutes = 10\nhigh_minutes = 30\n"
        '[people.rph]\ncontacts = { console = "rph-pager" }\n'
        '[people.doc-alpha]\ncontacts = { console = "doc-alpha-inbox" }\n'
        'provider_ids = ["1234567"]\n'
        '[teams.pharmacy]\npolicy = "p"\npage_channels = ["console"]\n'
        'notify = { console = "pharmacy-desk" }\n'
        'tiers = [{ members = ["rph"], start = "2024-01-01" }]\n'
        '[fallback]\nteam = "pharmacy"\nchannels = ["console"]\n'
    )
    app = _app(sqlite_url, routing)
    try:
        feed(app, DENO, FCM)
        _, [page] = advisories(app)
        with Session(app.engine) as session:
            rows = session.exec(select(OutboxRow)).all()
    finally:
        app.close()
    assert page["recipients"] == ["pharmacy", "doc-alpha"]
    assert sorted((r.channel, r.recipient) for r in rows) == [
        ("console", "doc-alpha-inbox"),
        ("console", "pharmacy-desk"),
    ]


def test_advisory_survives_redelivery_and_batches(database_url: str) -> None:
    app = _app(database_url)
    try:
        # One batch holding the whole story, then the same messages again.
        items = [Incoming(raw, source="replay") for _, raw in (DENO, FCM)]
        app.pipeline.process_batch(items)
        app.pipeline.process_batch(items)
        feed(app, (day(2), calcium(day(2), "9.0")))  # a later evaluation sends nothing more
        rows, payloads = advisories(app)
    finally:
        app.close()
    assert len(rows) == 1 and len(payloads) == 1
