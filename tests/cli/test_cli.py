"""The command line as a user runs it: real processes, real files, real databases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.runtime.secrets_policy import fresh_secrets_env
from service.tools.feedgen import generate_feed

pytestmark = pytest.mark.slow  # every test runs the `labsentinel` command as a subprocess

LABSENTINEL = [sys.executable, "-m", "service.cli.main"]
# The JSON keys of a page (DESIGN.md): what downstream consumers of pages-out rely on.
CONTRACT_KEYS = {
    "event",
    "rule",
    "severity",
    "patient",
    "analyte",
    "value",
    "unit",
    "observed_at",
    "iron",
    "antiresorptive",
    "dedup_key",
    "recipients",
}
CONTRACT_EVENTS = {"alert", "update", "escalation", "resolved", "reminder", "advisory"}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [*LABSENTINEL, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[2],  # the repository root
    )


@pytest.fixture(scope="module")
def feed():
    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    return generate_feed(messages=1500, planted=6, seed=3, start=start, garbage=2)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_replay_honours_the_design_contract(feed, database_url: str, tmp_path: Path) -> None:
    hl7 = tmp_path / "feed.hl7"
    hl7.write_bytes(feed.to_file_bytes())
    pages = tmp_path / "pages.jsonl"
    done = run_cli("replay", str(hl7), "--database-url", database_url, "--pages-out", str(pages))
    assert done.returncode == 0, done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("replay: ") and "2 dead-lettered" in summary
    everything = read_jsonl(pages)
    for line in everything:
        assert line.keys() >= CONTRACT_KEYS
        assert line["event"] in CONTRACT_EVENTS
    # Besides the pages: advisories, reminders and escalations (DESIGN.md events).
    lines = [p for p in everything if p["event"] == "alert"]
    assert {(p["patient"]["id"], p["analyte"]) for p in lines} == {
        (c.patient_id, c.analyte) for c in feed.planted
    }
    for page in lines:
        assert page["rule"] == "iron-antiresorptive-mineral"
        assert page["severity"] in ("high", "critical")
        assert set(page["iron"]) >= {"drug", "dose_at", "days_since"}
        assert set(page["antiresorptive"]) >= {"drug", "dose_at"}
        datetime.fromisoformat(page["observed_at"])
    # Replaying the same file again into the same database pages nothing new.
    again = run_cli("replay", str(hl7), "--database-url", database_url, "--pages-out", str(pages))
    assert again.returncode == 0 and len(read_jsonl(pages)) == len(everything)


def test_replay_reads_mllp_framing_and_lf_segments(feed, tmp_path: Path) -> None:
    messages = [r.value for r in feed.records if r.kind != "garbage"]
    mllp = tmp_path / "feed.mllp"
    mllp.write_bytes(b"".join(b"\x0b" + m + b"\x1c\x0d" for m in messages))
    lf = tmp_path / "feed.lf"
    lf.write_bytes(b"\n\n".join(m.replace(b"\r", b"\n") for m in messages))
    for path in (mllp, lf):
        pages = tmp_path / f"{path.suffix}.jsonl"
        db = f"sqlite:///{tmp_path / (path.suffix + '.db')}"
        done = run_cli("replay", str(path), "--database-url", db, "--pages-out", str(pages))
        assert done.returncode == 0, done.stderr
        assert "0 dead-lettered" in done.stdout
        alerts = [p for p in read_jsonl(pages) if p["event"] == "alert"]
        assert len(alerts) == len(feed.planted)


def test_replay_of_garbage_exits_zero_and_says_so(tmp_path: Path) -> None:
    junk = tmp_path / "junk.hl7"
    junk.write_bytes(b"hello\r\n\r\nMSH|^~\\&|broken\r\n\r\n\x00\x01\x02")
    done = run_cli("replay", str(junk), "--database-url", f"sqlite:///{tmp_path / 'j.db'}")
    assert done.returncode == 0
    assert "3 dead-lettered" in done.stdout


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"LABSENTINEL_KAFKA_MAX_BATCH_RECORDS": "many"}, "kafka.max_batch_records"),
        ({"LABSENTINEL_CLINICAL_IRON_WINDOW_DAYS": "90"}, "clinical.iron_window_days"),
        ({"LABSENTINEL_HOSPITAL_TIMEZONE": "Mars/Olympus"}, "hospital.timezone"),
        ({"LABSENTINEL_DATABASE_URL": "mysql://x"}, "database.url"),
    ],
)
def test_bad_settings_stop_start_up_naming_the_key(env: dict[str, str], key: str) -> None:
    for command in (["check-config"], ["run"]):
        done = run_cli(*command, env=env, timeout=30)
        assert done.returncode == 2
        assert f"'{key}'" in done.stderr


def test_unknown_key_in_config_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "site.toml"
    config.write_text('[kafka]\nbootstrap_server = "typo:9092"\n')
    done = run_cli("check-config", "--config", str(config), timeout=30)
    assert done.returncode == 2
    assert "'kafka.bootstrap_server'" in done.stderr and "unknown setting" in done.stderr


@pytest.mark.kafka
def test_demo_pages_every_planted_case(tmp_path: Path) -> None:
    done = run_cli("demo", "--messages", "800", "--workdir", str(tmp_path), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6/6 planted cases paged" in done.stdout
    assert "ALERT" in done.stdout  # the console channel printed the pages


@pytest.mark.kafka
def test_run_daemon_pages_then_stops_cleanly_on_sigterm(broker, unique: str, tmp_path: Path):
    from tests.integration.helpers import publish, settings_for

    database = f"sqlite:///{tmp_path / 'run.db'}"
    settings = settings_for(broker, database, unique)
    start = (datetime.now(UTC) - timedelta(days=36)).replace(microsecond=0)
    oru, rde = settings.kafka.topics
    feed = generate_feed(messages=400, planted=3, seed=5, start=start, oru_topic=oru, rde_topic=rde)
    import asyncio

    asyncio.run(publish(settings, feed.records))
    pages = tmp_path / "pages.jsonl"
    env = {
        "LABSENTINEL_DATABASE_URL": database,
        "LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "LABSENTINEL_KAFKA_GROUP_ID": f"run-{unique}",
        "LABSENTINEL_KAFKA_TOPICS": json.dumps(list(settings.kafka.topics)),
        "LABSENTINEL_KAFKA_SESSION_TIMEOUT_MS": "6000",
        # The feed is five weeks old; with the wall clock its results would all be backfill.
        "LABSENTINEL_CLINICAL_BACKFILL_DAYS": "365",
        "LABSENTINEL_API_PORT": "0",
        **fresh_secrets_env(),  # `run` refuses to start without them
    }
    process = subprocess.Popen(
        [*LABSENTINEL, "run", "--pages-out", str(pages)],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if pages.exists() and len(read_jsonl(pages)) >= len(feed.planted):
                break
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.5)
        assert {(p["patient"]["id"], p["analyte"]) for p in read_jsonl(pages)} == {
            (c.patient_id, c.analyte) for c in feed.planted
        }
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    logs = process.stderr.read() if process.stderr else ""
    # No patient names or birth dates in the logs (the feed plants fake ones).
    assert "TESTPATIENT" not in logs and "19" + "50" not in logs


def test_replay_progress_bar_shows_rate_and_eta(feed, tmp_path: Path) -> None:
    hl7 = tmp_path / "feed.hl7"
    hl7.write_bytes(feed.to_file_bytes())
    db = f"sqlite:///{tmp_path / 'p.db'}"
    done = run_cli("replay", str(hl7), "--database-url", db, "--progress", "always")
    assert done.returncode == 0, done.stderr
    bar = done.stderr.split("\r")[-1]
    assert "feed.hl7 [" in bar and "100%" in bar and "msg/s" in bar and "ETA" in bar
    # Without a terminal the default prints no bar (logs stay one event per line).
    quiet = run_cli("replay", str(hl7), "--database-url", db)
    assert "msg/s ETA" not in quiet.stderr
