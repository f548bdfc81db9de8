"""The worklist's monitoring checks are the configured plan the reminder sweep works from.

A phosphate and a calcium drawn 20 days before the iron dose: inside the default 30-day
baseline window (``monitoring.baseline_days_before``), so the worklist shows the baseline done
and the sweep sends no baseline reminder; a hospital that asks for 14 days gets "missing" on
the worklist and a baseline reminder from the sweep. Either way the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from service.api import ApiContext, create_app
from service.bootstrap import build_app
from service.ingest.pipeline import Incoming
from service.notify.prevention import run_reminders
from service.runtime.clock import FixedClock, MessageClock
from service.runtime.settings import load_settings
from tests.api.story import TOKEN
from tests.messages import DENOSUMAB, oru, rde

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the iron dose
MRN = "MRNBASE20"
CALCIUM = {"code": "17861-6", "name": "Calcium", "ref": "8.5-10.5"}


def _messages() -> list[bytes]:
    drawn = T0 - timedelta(days=20)
    return [
        rde(MRN, T0 - timedelta(days=60), drug=DENOSUMAB, route="SC"),
        oru(MRN, drawn, value="3.4"),
        oru(MRN, drawn, value="9.3", **CALCIUM),
        rde(MRN, T0),
    ]


@pytest.mark.parametrize(
    ("monitoring", "baseline", "reminded"),
    [
        # Default 30-day window: drawn 20 days before counts as the baseline.
        ({}, "done", []),
        # A 14-day window: the same draw is too early, on the worklist and for the sweep.
        ({"baseline_days_before": 14}, "missing", ["baseline"]),
    ],
)
async def test_worklist_and_reminder_sweep_agree_on_the_baseline(
    sqlite_url: str, monitoring: dict[str, Any], baseline: str, reminded: list[str]
) -> None:
    settings = load_settings(
        overrides={
            "database": {"url": sqlite_url},
            "api": {"tokens": [TOKEN]},
            "routing": {"default_channels": []},
            "monitoring": monitoring,
        }
    )
    app = build_app(settings, clock=MessageClock())
    now = T0 + timedelta(hours=1)
    try:
        for raw in _messages():
            app.pipeline.process(Incoming(raw=raw, source="replay"))
        context = ApiContext(
            settings=settings, engine=app.engine, clinical=app.clinical, clock=FixedClock(now)
        )
        transport = httpx.ASGITransport(app=create_app(context))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.get(
                "/api/v1/worklist", headers={"Authorization": f"Bearer {TOKEN}"}
            )
        [risk] = response.json()["at_risk"]
        checks = {m["label"]: m["state"] for m in risk["monitoring"]}
        assert checks["baseline"] == baseline

        report = run_reminders(app.engine, app.clinical, now, delivery=app.pipeline.delivery)
        assert [label for _, label in report.sent] == reminded
    finally:
        app.close()
