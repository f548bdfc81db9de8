"""The worklist's order: critical, high, warning, info; within one, unacknowledged first, then
the longest waiting. The pure key over plain documents, and the SQL on both databases."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlmodel import Session

from alerts.identity import patient_key
from service.api.context import ApiContext, Readiness
from service.api.views.worklist_order import ordered_alerts, severity_rank, worklist_key
from service.bootstrap import build_app
from service.db.models import Alert
from tests.api.story import TOKEN, Story, story_settings

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _doc(id_: int, severity: str, minutes: int, *, acked: bool = False) -> dict[str, object]:
    return {
        "id": id_,
        "severity": severity,
        "created_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "ack": {"by": "Dr A"} if acked else None,
    }


def test_key_orders_by_severity_then_unacknowledged_then_age() -> None:
    docs = [
        _doc(1, "info", 0),
        _doc(2, "warning", 5),
        _doc(3, "critical", 30),  # newer critical
        _doc(4, "high", 1),
        _doc(5, "critical", 10),  # older critical: waiting longest
        _doc(6, "critical", 0, acked=True),  # oldest, but someone has it in hand
        _doc(7, "mystery", -100),  # an unknown severity goes last, however old
        _doc(8, "high", 1),  # same age as 4: the lower id first
    ]
    ordered = [d["id"] for d in sorted(docs, key=worklist_key)]
    assert ordered == [5, 3, 6, 4, 8, 2, 1, 7]


def test_severity_rank_follows_the_paging_tiers() -> None:
    # "moderate" in clinical speech is this project's "warning".
    assert [severity_rank(s) for s in ("critical", "high", "warning", "info", "x")] == [
        0,
        1,
        2,
        3,
        4,
    ]


def test_sql_order_matches_the_key_and_keeps_the_urgent_under_the_limit(
    database_url: str, tmp_path: Path
) -> None:
    settings = story_settings(database_url, tmp_path)
    app = build_app(settings)
    try:
        shuffled = random.Random(7)
        specs = [
            (sev, minutes, acked)
            for sev in ("info", "warning", "high", "critical")
            for minutes in (0, 40, 20)
            for acked in (False, True)
        ]
        shuffled.shuffle(specs)
        with Session(app.engine) as session:
            for n, (severity, minutes, acked) in enumerate(specs):
                at = T0 + timedelta(minutes=minutes)
                session.add(
                    _alert(
                        dedup_key=f"order-{n}",
                        rule="iron-antiresorptive-mineral",
                        patient_id=f"P{n}|GH",
                        analyte="phosphate",
                        severity=severity,
                        status="open",
                        value=1.0,
                        created_at=at,
                        updated_at=T0 + timedelta(minutes=100 - n),  # newest-updated != order
                        acked_at=at + timedelta(minutes=1) if acked else None,
                        acked_by="Dr A" if acked else "",
                    )
                )
            session.add(
                _alert(
                    dedup_key="order-resolved",
                    rule="iron-antiresorptive-mineral",
                    patient_id="PR|GH",
                    analyte="calcium",
                    severity="critical",
                    status="resolved",
                    created_at=T0 - timedelta(days=1),
                )
            )
            session.commit()
        context = ApiContext(
            settings=settings,
            engine=app.engine,
            clinical=app.clinical,
            pipeline=app.pipeline,
            readiness=Readiness(),
        )
        everything = ordered_alerts(context, status="open", limit=100)
        assert len(everything) == len(specs)  # the resolved one is not on the open list
        assert everything == sorted(everything, key=worklist_key)
        assert [d["severity"] for d in everything[:6]] == ["critical"] * 6
        first = everything[0]
        assert first["ack"] is None and first["created_at"].startswith("2026-03-01T08:00")
        # The page limit cuts from the bottom of the order: info goes, critical stays.
        top = ordered_alerts(context, status="open", limit=8)
        assert [d["id"] for d in top] == [d["id"] for d in everything[:8]]
    finally:
        app.close()


async def test_worklist_page_lists_open_alerts_most_severe_first(
    client: httpx.AsyncClient, story: Story
) -> None:
    # The story's open high phosphate alert, plus newer ones of every tier.
    with Session(story.app.engine) as session:
        for n, severity in enumerate(("info", "critical", "warning", "high", "critical")):
            session.add(
                _alert(
                    dedup_key=f"page-{n}",
                    rule="iron-antiresorptive-mineral",
                    patient_id=patient_key(f"PAGE{n}", "GH"),
                    analyte="calcium",
                    severity=severity,
                    status="open",
                    value=7.0,
                    created_at=story.now + timedelta(minutes=n),
                )
            )
        session.commit()
    await client.post("/login", data={"token": TOKEN, "next": "/worklist"})
    page = (await client.get("/worklist")).text
    open_section = page.split("At risk now")[0]
    shown = re.findall(r'class="sev sev-(\w+)"', open_section)
    story_severities = [
        d["severity"] for d in ordered_alerts(story.context, status="open", limit=99)
    ]
    assert len(shown) == len(story_severities) and shown.count("info") == 1
    assert shown == sorted(shown, key=severity_rank) and shown[-1] == "info"
    # Within "critical", the story's own alerts (raised before the added ones) come first.
    patients = re.findall(r'sev-critical">critical</span>.*?<br>\s*(\S+) ·', open_section, re.S)
    assert patients[-2:] == ["PAGE1", "PAGE4"], patients


def _alert(**fields: Any) -> Alert:
    times = {
        "observed_at": T0 - timedelta(hours=2),
        "iron_dose_at": T0 - timedelta(days=10),
        "episode_start": T0 - timedelta(days=10),
        "antiresorptive_dose_at": T0 - timedelta(days=40),
        "created_at": T0 - timedelta(days=1),
        "updated_at": T0,
    }
    return Alert(**{**times, **fields})
