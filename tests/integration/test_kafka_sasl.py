"""The daemon against an Apache Kafka cluster that requires SASL/SCRAM-SHA-512, as a hospital's
cluster does: it pages every planted case with the right credential, and with a wrong one it
stops with one sentence that names the broker and never the password."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.bootstrap import build_app
from service.daemon import run_until_consumed
from service.runtime.clock import MessageClock
from service.runtime.secrets_policy import fresh_secrets_env
from service.runtime.settings import Settings, load_settings
from service.tools.kafka import ApacheKafka, Scram
from tests.conftest import require_apache_kafka_tools
from tests.integration.helpers import make_feed, publish, read_pages, settings_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scram_kafka() -> Iterator[ApacheKafka]:
    require_apache_kafka_tools()
    credential = Scram("labsentinel", secrets.token_urlsafe(24))
    with ApacheKafka(scram=credential) as kafka:
        yield kafka


def _with_credential(settings: Settings, kafka: ApacheKafka, password: str) -> Settings:
    assert kafka.scram is not None
    kafka_section = settings.kafka.model_dump(mode="json") | {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": kafka.scram.mechanism,
        "sasl_username": kafka.scram.username,
        "sasl_password": password,
    }
    return load_settings(overrides={**_overrides(settings), "kafka": kafka_section})


def _overrides(settings: Settings) -> dict:  # type: ignore[type-arg]
    return {
        "database": {"url": settings.database.url},
        "routing": {"default_channels": []},
        "api": {"port": 0},
        "dispatcher": {"poll_interval_s": 0.05},
        "logging": {"format": "text"},
    }


async def test_daemon_pages_every_planted_case_through_sasl_scram(
    scram_kafka: ApacheKafka, sqlite_url: str, unique: str, tmp_path: Path
) -> None:
    assert scram_kafka.scram is not None
    settings = _with_credential(
        settings_for(scram_kafka, sqlite_url, unique), scram_kafka, scram_kafka.scram.password
    )
    feed = make_feed(settings, garbage=0)
    await publish(settings, feed.records)
    pages_out = tmp_path / "pages.jsonl"
    app = build_app(settings, pages_out=pages_out, clock=MessageClock())
    try:
        await run_until_consumed(app, len(feed.records), timeout_s=90)
    finally:
        app.close()
    alerts = Counter(
        (p["patient"]["id"], p["analyte"]) for p in read_pages(pages_out) if p["event"] == "alert"
    )
    assert alerts == Counter((case.patient_id, case.analyte) for case in feed.planted)


def test_run_with_a_wrong_password_stops_with_one_sentence(
    scram_kafka: ApacheKafka, sqlite_url: str, unique: str, tmp_path: Path
) -> None:
    assert scram_kafka.scram is not None
    wrong = "not-the-password-" + secrets.token_hex(8)
    env = {
        **os.environ,
        **scram_kafka.settings_environment(),
        "LABSENTINEL_KAFKA_SASL_PASSWORD": wrong,
        "LABSENTINEL_KAFKA_GROUP_ID": f"labsentinel-{unique}",
        "LABSENTINEL_DATABASE_URL": sqlite_url,
        "LABSENTINEL_API_PORT": "0",
        **fresh_secrets_env(),  # `run` refuses to start without them
    }
    result = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "run", "--pages-out", str(tmp_path / "p")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert wrong not in output and scram_kafka.scram.password not in output
    assert scram_kafka.bootstrap_servers in output
    assert "kafka.sasl_password" in output.splitlines()[-1]
