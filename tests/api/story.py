"""One database with a story a clinician would recognise, shared by the API and web tests.

Patient MRNSTORY01 (4W-412): denosumab 50 days ago, ferric carboxymaltose 21 days ago, then
phosphate and calcium falling over the following weeks (an open, paged alert), plus a parse
failure and a result in a unit the lab catalog does not know yet (two dead letters).
Processed with the message clock, as a replay is, so the late results page.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from alerts.identity import patient_key
from service.api.context import ApiContext, Readiness
from service.bootstrap import App, build_app
from service.db.models import Alert, DeadLetter
from service.ingest.pipeline import Incoming
from service.runtime.clock import MessageClock
from service.runtime.settings import Settings, default_config_path, load_settings
from tests.messages import DENOSUMAB, oru, rde

# Secrets as strong as `run` requires (service.runtime.secrets_policy: 32 bytes or more).
TOKEN = "test-token-0123456789abcdefghijklmno"
# The story's token is an admin token named "story" (api.tokens entry "story:admin:<secret>"):
# the API and page tests use every right; what each role may do is tests/security/test_roles.py.
ACTOR = "token:story"
OTHER_TOKEN = "second-token-abcdefghijklmnopqrstuvwx"
ACK_SECRET = "test-ack-secret-0123456789abcdefghij"
MRN = "MRNSTORY01"
QUIET_MRN = "MRNQUIET02"
ODD_UNIT = "milligrams per deciliter"


def story_settings(database_url: str, tmp_path: Path, *, fixed_catalog: bool = False) -> Settings:
    overrides: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "api": {
            "tokens": [f"story:admin:{TOKEN}", OTHER_TOKEN],
            "ack_secret": ACK_SECRET,
            "base_url": "http://127.0.0.1:8080",
            "port": 0,
        },
        "routing": {"default_channels": []},
        "logging": {"format": "text"},
    }
    if fixed_catalog:
        overrides["clinical"] = {"lab_catalog": str(fixed_lab_catalog(tmp_path))}
    return load_settings(overrides=overrides)


def fixed_lab_catalog(tmp_path: Path) -> Path:
    """The shipped lab catalog plus the unit spelling of the dead-lettered result: the "fix"."""
    target = tmp_path / "fixed" / "labs.toml"
    target.parent.mkdir(exist_ok=True)
    shutil.copy(default_config_path().parent / "labs.toml", target)
    text = target.read_text()
    text = text.replace(
        '[analytes.phosphate.units]\n"mg/dL" = 1.0\n',
        f'[analytes.phosphate.units]\n"mg/dL" = 1.0\n"{ODD_UNIT}" = 1.0\n',
    )
    assert ODD_UNIT in text
    target.write_text(text)
    return target


def story_messages(now: datetime) -> list[bytes]:
    day = timedelta(days=1)
    iron_at = now - 21 * day
    messages = [
        rde(MRN, now - 50 * day, drug=DENOSUMAB, route="SC"),
        oru(MRN, iron_at - 1 * day, value="3.4"),
        oru(MRN, iron_at - 1 * day, code="17861-6", name="Calcium", value="9.3", ref="8.5-10.5"),
        rde(MRN, iron_at),
    ]
    # (day after the iron, phosphate mg/dL, calcium mg/dL): both falling.
    falling = [(7, "2.7", "8.9"), (12, "1.9", "8.6"), (17, "1.3", "8.1"), (19, "1.1", "7.9")]
    for days, phos, calcium in falling:
        drawn = iron_at + days * day
        messages.append(oru(MRN, drawn, value=phos))
        messages.append(
            oru(MRN, drawn, code="17861-6", name="Calcium", value=calcium, ref="8.5-10.5")
        )
    # A patient on both drugs long ago: not at risk now.
    messages.append(rde(QUIET_MRN, now - 300 * day, drug=DENOSUMAB, route="SC"))
    messages.append(rde(QUIET_MRN, now - 200 * day))
    # Dead letters: not HL7 at all, and a phosphate in a unit the catalog does not know.
    messages.append(b"this is not an HL7 message")
    messages.append(oru(QUIET_MRN, now - 2 * day, value="3.1", unit=ODD_UNIT))
    return messages


@dataclass
class Story:
    settings: Settings
    app: App
    context: ApiContext
    now: datetime

    def alert(self) -> Alert:
        with Session(self.app.engine) as session:
            return session.exec(
                select(Alert).where(
                    Alert.patient_id == patient_key(MRN, "GH"), Alert.status == "open"
                )
            ).first()  # type: ignore[return-value]

    def dead_letters(self) -> list[DeadLetter]:
        with Session(self.app.engine) as session:
            return list(session.exec(select(DeadLetter).order_by(DeadLetter.id)).all())


def build_story(database_url: str, tmp_path: Path) -> Story:
    """Replay the story and deliver its pages to a JSON-lines file (delivery attempts exist)."""
    settings = story_settings(database_url, tmp_path)
    app = build_app(settings, clock=MessageClock(), pages_out=tmp_path / "pages.jsonl")
    now = datetime.now(UTC).replace(microsecond=0)
    for raw in story_messages(now):
        app.pipeline.process(Incoming(raw=raw, source="replay", topic="story.hl7"))
    # A worker thread: the caller may be inside pytest-asyncio's running loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, app.dispatcher.drain()).result()
    context = ApiContext(
        settings=settings,
        engine=app.engine,
        clinical=app.clinical,
        pipeline=app.pipeline,
        readiness=Readiness(),
    )
    return Story(settings, app, context, now)


@pytest.fixture
def story(sqlite_url: str, tmp_path: Path) -> Iterator[Story]:
    """The story on SQLite, closed afterwards (a fixture for every test, registered in
    tests/conftest.py; a module that needs both databases defines its own on
    ``database_url``)."""
    built = build_story(sqlite_url, tmp_path)
    try:
        yield built
    finally:
        built.app.close()
