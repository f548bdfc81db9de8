"""The reminder sweep (issue #4 item 2): ``run_reminders`` with the clock passed in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from service.bootstrap import App, build_app
from service.db.models import NotificationRow
from service.db.prevention import ReminderRow
from service.ingest.pipeline import Incoming
from service.notify.prevention import run_reminders
from service.notify.reminders import ReminderComponent
from service.runtime.clock import FixedClock, MessageClock
from service.runtime.settings import ConfigError, load_settings
from tests.messages import DENOSUMAB, rde

from .episode import MRN, T0, calcium, day, phosphate


def _app(database_url: str, **monitoring: object) -> App:
    settings = load_settings(
        overrides={"database": {"url": database_url}, "monitoring": dict(monitoring)}
    )
    return build_app(settings, clock=FixedClock(T0), transports={})


@pytest.fixture
def app(sqlite_url: str) -> Iterator[App]:
    built = _app(sqlite_url)
    yield built
    built.close()


def store(app: App, *messages: bytes) -> None:
    for raw in messages:
        app.pipeline.process(Incoming(raw, source="replay"))


def sweep(app: App, now: datetime) -> list[str]:
    report = run_reminders(app.engine, app.clinical, now, delivery=app.pipeline.delivery)
    return [label for _, label in report.sent]


def reminders(app: App) -> list[dict]:  # type: ignore[type-arg]
    with Session(app.engine) as session:
        rows = session.exec(select(NotificationRow).where(NotificationRow.event == "reminder"))
        return [json.loads(r.payload) for r in rows]


EXPOSURE = (rde(MRN, day(-60), drug=DENOSUMAB, route="SC"), rde(MRN, T0))
BASELINE = (phosphate(day(-3), "3.4"), calcium(day(-3), "9.2"))

CASES = [
    # No baseline: reminded once the dose time has passed.
    ("missing baseline", (), [day(0, 1)], ["baseline"]),
    # Baseline drawn within 30 days before the dose: nothing to remind.
    ("baseline drawn", BASELINE, [day(0, 1)], []),
    # Day 7 window is [day 4, day 10] (grace 3): not due at its end, due just after.
    ("day 7 not yet", BASELINE, [day(10)], []),
    ("day 7 missed", BASELINE, [day(10, 1)], ["day 7"]),
    # Drawn on day 8: the day-7 point is satisfied.
    ("day 7 drawn", (*BASELINE, phosphate(day(8), "3.0"), calcium(day(8), "9.0")),
     [day(10, 1)], []),
    # Only phosphate drawn: calcium is missing, so still reminded.
    ("day 7 half drawn", (*BASELINE, phosphate(day(8), "3.0")), [day(10, 1)], ["day 7"]),
    # Downtime until day 25: only the latest missed check (day 21) is worth a message.
    ("superseded after downtime", BASELINE, [day(25)], ["day 21"]),
    # Swept daily: each missed point once, in order.
    ("daily sweeps", (), [day(n, 1) for n in range(0, 35)],
     ["baseline", "day 7", "day 21", "month 1"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "results", "sweeps", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_reminder_cases(
    app: App,
    name: str,
    results: tuple,
    sweeps: list,
    expected: list[str],  # type: ignore[type-arg]
) -> None:
    store(app, *EXPOSURE, *results)
    sent = [label for now in sweeps for label in sweep(app, now)]
    assert sent == expected
    for page in reminders(app):
        assert (page["event"], page["severity"]) == ("reminder", "info")
        assert page["rule"] == "iron-antiresorptive-monitoring"
        assert page["iron"]["drug"].lower() == "ferric carboxymaltose"


def test_a_result_arriving_clears_the_reminder(app: App) -> None:
    store(app, *EXPOSURE, *BASELINE)
    assert sweep(app, day(11)) == ["day 7"]
    store(app, phosphate(day(12), "3.0"), calcium(day(12), "9.0"))
    assert sweep(app, day(12, 1)) == []
    with Session(app.engine) as session:
        [row] = session.exec(select(ReminderRow)).all()
    assert row.label == "day 7" and row.cleared_at == day(12, 1)
    [page] = reminders(app)
    assert page["reminder"]["missing"] == ["phosphate", "calcium"]
    assert page["reminder"]["due_at"] == day(7).isoformat()


def test_restart_neither_loses_nor_repeats(database_url: str) -> None:
    first = _app(database_url)
    try:
        store(first, *EXPOSURE, *BASELINE)
        assert sweep(first, day(11)) == ["day 7"]
        assert sweep(first, day(11)) == []  # the same run again: nothing new
    finally:
        first.close()
    # A new process on the same database, down across the day-21 point.
    second = _app(database_url)
    try:
        assert sweep(second, day(11, 2)) == []
        assert sweep(second, day(25)) == ["day 21"]
        assert [p["reminder"]["label"] for p in reminders(second)] == ["day 7", "day 21"]
    finally:
        second.close()


def test_schedule_comes_from_settings(sqlite_url: str) -> None:
    app = _app(sqlite_url, points_days=[5], monthly_months=0, grace_days=1)
    try:
        store(app, *EXPOSURE, *BASELINE)
        assert sweep(app, day(6, 1)) == ["day 5"]
        assert sweep(app, day(60)) == []  # no monthly points configured
    finally:
        app.close()


def test_bad_monitoring_setting_is_named() -> None:
    with pytest.raises(ConfigError, match="monitoring.points_days"):
        load_settings(overrides={"monitoring": {"points_days": [0]}})
    defaults = load_settings().monitoring
    assert (defaults.baseline_days_before, defaults.points_days) == (30, (7, 21))
    assert (defaults.monthly_months, defaults.grace_days, defaults.sweep_interval_s) == (3, 3, 300)
    clinical = load_settings().clinical
    assert (clinical.trend_drop_fraction, clinical.advisory_lookback_days) == (0.30, 30)
    assert clinical.advisory_late_days == 7


async def test_component_sweeps_with_the_wall_clock(sqlite_url: str) -> None:
    app = _app(sqlite_url, sweep_interval_s=0.05)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        store(app, rde(MRN, now - timedelta(days=60), drug=DENOSUMAB, route="SC"))
        store(app, rde(MRN, now - timedelta(days=12)))
        component = ReminderComponent(app)
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        for _ in range(100):
            if component.runs >= 2:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task
        assert component.runs >= 2
        # Baseline superseded by day 7 (window ended 2 days ago); sent once over many runs.
        assert [p["reminder"]["label"] for p in reminders(app)] == ["day 7"]
    finally:
        app.close()


async def test_component_waits_under_a_message_clock(sqlite_url: str) -> None:
    app = build_app(
        load_settings(overrides={"database": {"url": sqlite_url}}),
        clock=MessageClock(),
        transports={},
    )
    try:
        component = ReminderComponent(app)
        stop = asyncio.Event()
        task = asyncio.create_task(component.run(stop))
        await asyncio.sleep(0.1)
        stop.set()
        await task
        assert component.runs == 0  # replay drives reminders with the message clock
    finally:
        app.close()
