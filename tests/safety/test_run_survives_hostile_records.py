"""`labsentinel run` on PostgreSQL, fed by a real broker (Tansu), survives a relevant ORU whose
MSH-10 holds a NUL byte: it stays alive, commits past the record, and pages the planted case
published after it. (Before, it died on the record, and again after each restart.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest

from service.ingest.consumer import kafka_options
from service.ingest.group_offsets import group_lag
from service.runtime.secrets_policy import fresh_secrets_env
from service.runtime.settings import Settings
from tests.integration.helpers import publish, read_pages, settings_for
from tests.safety.hostile import FORBIDDEN_ON_OUTPUT, PLANTED_MRN, hostile_oru, planted_case

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


class Record(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes


def test_run_on_postgresql_survives_a_nul_in_msh10_and_pages_what_follows(
    broker, pg_url: str, unique: str, tmp_path: Path
) -> None:
    settings = settings_for(broker, pg_url, unique)
    oru_topic, rde_topic = settings.kafka.topics
    drawn = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    deno, iron, phosphate = planted_case("RUN", drawn)
    hostile = hostile_oru(control_id=b"RUN\x00NUL")
    records = [
        Record(oru_topic, b"hostile", hostile),  # first on its topic
        Record(rde_topic, None, deno),
        Record(rde_topic, None, iron),
        Record(oru_topic, None, phosphate),
    ]
    asyncio.run(publish(settings, records))
    pages = tmp_path / "pages.jsonl"
    env = {
        "LABSENTINEL_DATABASE_URL": pg_url,
        "LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "LABSENTINEL_KAFKA_GROUP_ID": settings.kafka.group_id,
        "LABSENTINEL_KAFKA_TOPICS": json.dumps(list(settings.kafka.topics)),
        "LABSENTINEL_KAFKA_DEAD_LETTER_TOPIC": settings.kafka.dead_letter_topic,
        "LABSENTINEL_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LABSENTINEL_KAFKA_FETCH_TIMEOUT_MS": "100",
        "LABSENTINEL_API_PORT": "0",
        **fresh_secrets_env(),  # `run` refuses to start without them
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "run", "--pages-out", str(pages)],
        env={**os.environ, **env}, cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        paged: list[dict] = []  # type: ignore[type-arg]
        while time.monotonic() < deadline and not paged:
            assert process.poll() is None, "the daemon exited"
            paged = [
                p for p in read_pages(pages)
                if p["event"] == "alert" and p["patient"]["id"] == PLANTED_MRN
            ]  # fmt: skip
            time.sleep(0.5)
        assert paged and paged[0]["severity"] in ("high", "critical")
        assert process.poll() is None, "the daemon exited"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stdout, stderr = process.communicate()
    # Committed past the hostile record: every partition of both topics up to its end.
    lag = asyncio.run(_uncommitted(settings))
    assert lag == 0, f"{lag} records not committed"
    for forbidden in FORBIDDEN_ON_OUTPUT:
        assert forbidden not in stdout + stderr, f"{forbidden!r} on the output"


async def _uncommitted(settings: Settings) -> int:
    return await group_lag(
        kafka_options(settings.kafka), settings.kafka.group_id, settings.kafka.topics
    )
