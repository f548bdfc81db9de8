"""Shared set-up of the paging integration tests: a routing file, settings, a replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from service.bootstrap import App, build_app
from service.db.models import OutboxRow
from service.ingest.pipeline import Incoming
from service.runtime.clock import MessageClock
from service.runtime.settings import Settings, load_settings
from service.tools.feedgen import generate_feed

TEAMS = ("icu", "nephrology", "oncology", "medicine", "pharmacy")
# The test's own statement of the routes (PV1-3.1 ward first, then PV1-10 service).
WARD_TEAM = {"ICU": "icu"}
SERVICE_TEAM = {"NEP": "nephrology", "ONC": "oncology", "MED": "medicine", "SUR": "medicine"}


def expected_team(location: str, service: str) -> str:
    ward = location.split("/", 1)[0].upper()
    return WARD_TEAM.get(ward) or SERVICE_TEAM.get(service.upper(), "pharmacy")


def write_routing(path: Path, *, extra_team: str = "") -> Path:
    people, teams = [], []
    for team in TEAMS:
        for tier in (1, 2):
            people.append(
                f'[people.{team}-{tier}]\ncontacts = {{ pager = "{team}-{tier}", '
                f'email = "{team}-{tier}@hospital.test" }}\n'
            )
        teams.append(
            f'[teams.{team}]\npolicy = "fast"\npage_channels = ["pager"]\n'
            f'notify = {{ email = "{team}@hospital.test" }}\n'
            f'tiers = [{{ members = ["{team}-1"], start = "2024-01-01" }}, '
            f'{{ members = ["{team}-2"], start = "2024-01-01" }}]\n'
        )
    text = (
        "[policies.fast]\ncritical_minutes = 10\nhigh_minutes = 30\nrepeat = 0\n"
        "ack_timeout_minutes = 120\n\n"
        + "\n".join(people)
        + "\n".join(teams)
        + extra_team
        + '\n[[routes]]\nteam = "icu"\nlocations = ["ICU*"]\n'
        '[[routes]]\nteam = "nephrology"\nservices = ["NEP"]\n'
        '[[routes]]\nteam = "oncology"\nservices = ["ONC"]\n'
        '[[routes]]\nteam = "medicine"\nservices = ["MED", "SUR"]\n'
        '\n[fallback]\nteam = "pharmacy"\nchannels = ["email"]\n'
        '\n[corrective]\nphosphate = ["potassium_phosphate", "sodium_phosphate"]\n'
        'calcium = ["calcium_gluconate", "calcium_carbonate", "calcitriol"]\n'
    )
    path.write_text(text)
    return path


def paging_settings(
    database_url: str, routing: Path, channels: dict[str, dict[str, Any]], **dispatcher: Any
) -> Settings:
    return load_settings(
        overrides={
            "database": {"url": database_url},
            "channels": channels,
            "routing": {"config": str(routing), "default_channels": []},
            "dispatcher": {
                "retry_initial_s": 0.05,
                "retry_max_s": 0.2,
                "deadline_s": 3.0,
                "send_timeout_s": 1.0,
                "poll_interval_s": 0.05,
                **dispatcher,
            },
            "api": {
                "ack_secret": "test-ack-secret-0123456789abcdefghij",
                "base_url": "https://ls.hospital.test",
            },
            "logging": {"format": "text"},
        }
    )


def wctp(url: str) -> dict[str, Any]:
    return {"type": "wctp", "url": url, "sender_id": "labsentinel", "timeout_s": 1.0}


def smtp(host: str, port: int) -> dict[str, Any]:
    return {"type": "smtp", "host": host, "port": port, "sender": "labsentinel@hospital.test"}


def feed_start() -> datetime:
    return (datetime.now(UTC) - timedelta(days=40)).replace(second=0, microsecond=0)


def replay(settings: Settings, messages: Iterable[bytes]) -> tuple[App, MessageClock]:
    clock = MessageClock()
    app = build_app(settings, clock=clock)
    for index, raw in enumerate(messages):
        app.pipeline.process(Incoming(raw=raw, source="replay", topic="test", offset=index))
    return app, clock


def planted_feed(seed: int = 7, planted: int = 5) -> Any:
    return generate_feed(
        messages=250, patients=60, planted=planted, seed=seed, start=feed_start(), duplicates=0
    )


async def deliver(app: App, timeout_s: float = 10.0) -> None:
    """Dispatch until nothing is pending (retries included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while app.dispatcher.pending_counts().get("pending", 0):
        if loop.time() > deadline:
            raise TimeoutError(app.dispatcher.pending_counts())
        if await app.dispatcher.dispatch_due() == 0:
            await asyncio.sleep(0.02)


def outbox(app: App) -> list[OutboxRow]:
    with Session(app.engine) as session:
        return list(session.exec(select(OutboxRow).order_by(OutboxRow.id)).all())


def payload(row: Any) -> dict[str, Any]:
    return json.loads(row.payload)


def corrective_order(feed: Any, patient_id: str, at: datetime, control_id: str) -> bytes:
    """An RDE^O11 for IV potassium phosphate, copying the patient's PID/PV1 from the feed."""
    source = next(r.value.decode() for r in feed.records if f"|{patient_id}^" in r.value.decode())
    segments = {s[:3]: s for s in source.split("\r") if s}
    ts = at.strftime("%Y%m%d%H%M%S+0000")
    return (
        "\r".join(
            (
                f"MSH|^~\\&|PHARM|GENERAL HOSPITAL|LABSENTINEL|GENERAL HOSPITAL|{ts}||"
                f"RDE^O11^RDE_O11|{control_id}|P|2.5.1",
                segments["PID"],
                segments["PV1"],
                f"ORC|NW|PL{control_id}|FL{control_id}||IP||||{ts}|||1234567^DOC^ALPHA^^^^^^NPI",
                f"RXE|^^^{ts}|KPHOS^Potassium phosphate 15 mmol in 250 mL^LOCAL|15||mmol|INJ",
                f"TQ1|1||||||{ts}",
                "RXR|IV",
            )
        ).encode()
        + b"\r"
    )
