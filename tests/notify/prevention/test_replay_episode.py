"""Issue #4 end to end: ``labsentinel replay --clock messages --pages-out`` and the worklist."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from alerts.identity import patient_key
from service.api.context import ApiContext
from service.api.views.alerts import list_alerts
from service.api.views.patients import patient_ref_for
from service.api.views.timeline import patient_timeline
from service.api.views.worklist import patients_at_risk
from service.bootstrap import build_clinical
from service.runtime.settings import load_settings

from .episode import MRN, brief, calcium, day, episode, phosphate, read, replay, write

pytestmark = pytest.mark.slow  # replays weeks of a hospital feed end to end

# Baseline drawn; day 7 missed (drawn late on day 12); a fall on day 17; day 21 drawn on day
# 22; month 1 missed. The shipped routing sends the patient (no PV1 service) to the pharmacy.
MULTI_WEEK = {
    -5: [phosphate(day(-5), "3.4"), calcium(day(-5), "9.2")],
    12: [phosphate(day(12, 1), "3.0"), calcium(day(12, 1), "9.0")],
    17: [phosphate(day(17, 2), "1.4")],
    22: [phosphate(day(22, 1), "3.1"), calcium(day(22, 1), "9.1")],
}
MULTI_WEEK_PAGES = [
    ("advisory", "iron-antiresorptive-advisory", "day 0", "pharmacy"),
    # Window [day 4, day 10 09:00]; the clock crosses into day 11 at 06:00 (day 10 + 21 h).
    ("reminder", "day 7", "day 10", "pharmacy"),
    ("alert", "phosphate", "day 17", "pharmacist-b"),
    # Unacknowledged "high" (30 min): tier 2, then the repeat round, at each day boundary.
    ("escalation", "phosphate", "day 17", "pharmacy-lead"),
    ("escalation", "phosphate", "day 18", "pharmacist-b"),
    ("escalation", "phosphate", "day 19", "pharmacy-lead"),
    # Month 1 window [day 27, day 33]: nothing drawn.
    ("reminder", "month 1", "day 33", "pharmacy"),
]


def test_done_means(tmp_path: Path, database_url: str) -> None:
    """Denosumab, then ferric carboxymaltose: the pharmacy gets the advisory when the order
    arrives, the day-7 reminder appears as no phosphate was drawn, the fall on day 17 pages
    the on-call - in ``replay --pages-out`` and on the worklist."""
    hl7 = write(tmp_path / "done.hl7", episode(last_day=17, events={17: MULTI_WEEK[17]}))
    pages = tmp_path / "pages.jsonl"
    summary = replay(hl7, database_url, pages)
    assert "0 dead-lettered" in summary
    lines = read(pages)
    assert [brief(p) for p in lines] == [
        ("advisory", "iron-antiresorptive-advisory", "day 0", "pharmacy"),
        ("reminder", "baseline", "day 0", "pharmacy"),
        ("reminder", "day 7", "day 10", "pharmacy"),
        ("alert", "phosphate", "day 17", "pharmacist-b"),
    ]
    advisory, _, day7, page = lines
    assert advisory["created_at"] == day(0).isoformat()  # when the order arrived
    assert advisory["phosphate"]["note"] == "none in the last 30 days"
    assert day7["reminder"]["reason"] == "day 7 phosphate/calcium check after IV iron not done"
    assert (page["severity"], page["value"], page["iron"]["days_since"]) == ("high", 1.4, 17)
    assert {p["patient"]["id"] for p in lines} == {MRN}

    # The worklist and the patient timeline show the episode.
    settings = load_settings(overrides={"database": {"url": database_url}})
    engine = create_engine(database_url)
    try:
        ctx = ApiContext(settings=settings, engine=engine, clinical=build_clinical(settings))
        now = day(17, 3)
        [risk] = patients_at_risk(ctx, now)
        assert risk.patient_id == patient_key(MRN, "GH") and risk.episode is not None
        assert risk.episode["advisory"]["status"] == "sent"
        states = {p["label"]: p["state"] for p in risk.episode["plan"]}
        assert states == {
            "baseline": "reminded",
            "day 7": "reminded",
            "day 21": "upcoming",
            "month 1": "upcoming",
            "month 2": "upcoming",
            "month 3": "upcoming",
        }
        [alert] = risk.episode["alerts"]
        assert (alert["analyte"], alert["severity"], alert["status"]) == (
            "phosphate",
            "high",
            "open",
        )
        open_alerts, _ = list_alerts(ctx, status="open", limit=10)
        assert [a["patient"]["id"] for a in open_alerts] == [MRN]
        ref = patient_ref_for(ctx, MRN)
        assert ref is not None
        timeline = patient_timeline(ctx, ref, now)
        assert timeline is not None and len(timeline.episodes) == 1
        assert [d["dose_at"] for d in timeline.episodes[0]["doses"]] == [day(0).isoformat()]
    finally:
        engine.dispose()


def test_multi_week_episode_is_exact_and_deterministic(tmp_path: Path) -> None:
    hl7 = write(tmp_path / "multi.hl7", episode(last_day=36, events=MULTI_WEEK))
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    replay(hl7, f"sqlite:///{tmp_path / 'a.db'}", first)
    replay(hl7, f"sqlite:///{tmp_path / 'b.db'}", second)
    assert [brief(p) for p in read(first)] == MULTI_WEEK_PAGES
    # Another run, another database: the same notifications at the same times. Their ids and
    # keys are not the same: they come from each alert's random public id (and each notice's
    # random key), so that no id can be traced back to the patient.
    times = [(p["event"], p["created_at"]) for p in read(first)]
    assert times == [(p["event"], p["created_at"]) for p in read(second)]
    assert not {p["notification_id"] for p in read(first)} & {
        p["notification_id"] for p in read(second)
    }
    # The same file into the same database again: nothing new.
    replay(hl7, f"sqlite:///{tmp_path / 'a.db'}", first)
    assert len(read(first)) == len(MULTI_WEEK_PAGES)


def test_restart_mid_episode_neither_loses_nor_repeats(tmp_path: Path) -> None:
    messages = episode(last_day=36, events=MULTI_WEEK)
    # Cut on day 15 (after the day-7 reminder, before the fall): two replays, one database.
    cut = next(i for i, m in enumerate(messages) if b"|20260317" in m.split(b"\r", 1)[0])
    first = write(tmp_path / "first.hl7", messages[:cut])
    second = write(tmp_path / "second.hl7", messages[cut:])
    pages = tmp_path / "pages.jsonl"
    database = f"sqlite:///{tmp_path / 'halves.db'}"
    replay(first, database, pages)
    assert [brief(p) for p in read(pages)] == MULTI_WEEK_PAGES[:2]
    replay(second, database, pages)
    lines = read(pages)
    assert [brief(p) for p in lines] == MULTI_WEEK_PAGES
    assert not [k for k, n in Counter(p["notification_id"] for p in lines).items() if n > 1]
