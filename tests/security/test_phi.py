"""No PHI in logs, metrics or dead-letter reasons.

The feed generator plants fake names in PID-5 ("TESTPATIENT", "O'TESTCASE", ...), birth dates
in PID-7, MRNs in PID-3 and never-issued SSNs ("999-..."). A real `labsentinel run` with DEBUG
logging processes a feed with garbage in it; every log line and the /metrics exposition are
scanned for every one of those values.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.ingest.pipeline import Incoming, Outcome
from service.runtime.secrets_policy import fresh_secrets_env
from service.tools.feedgen import Feed, FeedRecord, generate_feed
from service.tools.soak import DaemonProcess, _http_status
from tests.fuzz.conftest import make_app
from tests.integration.helpers import publish, settings_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def phi_values(feed: Feed) -> set[str]:
    """Names, birth dates, MRNs and SSNs of every patient in the feed, as rendered."""
    values: set[str] = set()
    for record in feed.records:
        for segment in record.value.decode("latin-1").split("\r"):
            if not segment.startswith("PID|"):
                continue
            fields = segment.split("|")
            for identifier in fields[3].split("~"):
                values.add(identifier.split("^")[0])
            values.add(fields[5].split("^")[0])  # family name, escaped as sent
            values.add(fields[5].replace("^", " ").strip())
            values.add(fields[7])  # birth date
    return {v for v in values if len(v) >= 6}


def scan(text: str, values: set[str]) -> list[str]:
    found = sorted(v for v in values if v in text)
    found += re.findall(r"MRN\d{8}|999-\d\d-\d{4}", text)
    return found


def test_no_phi_in_daemon_logs_or_metrics(broker, unique: str, tmp_path: Path) -> None:
    settings = settings_for(broker, f"sqlite:///{tmp_path / 'phi.db'}", unique)
    oru, rde = settings.kafka.topics
    start = (datetime.now(UTC) - timedelta(days=36)).replace(microsecond=0)
    feed = generate_feed(messages=800, planted=4, seed=9, start=start, garbage=20,
                         oru_topic=oru, rde_topic=rde)  # fmt: skip
    # Damaged messages whose PID survives: the parser sees the PHI and must not repeat it.
    damaged = [r.value.replace(b"|P|2.5.1", b"|P|9.9", 1)[:-40] for r in feed.records[:30]]
    asyncio.run(
        publish(
            settings,
            [
                *feed.records,
                *[
                    FeedRecord(r.topic, None, v, "garbage")
                    for r, v in zip(feed.records, damaged, strict=False)
                ],
            ],
        )
    )
    values = phi_values(feed)
    assert "TESTPATIENT" in values and any(re.fullmatch(r"19\d{6}", v) for v in values)
    pages = tmp_path / "pages.jsonl"
    daemon = DaemonProcess(
        {
            "LABSENTINEL_DATABASE_URL": settings.database.url,
            "LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "LABSENTINEL_KAFKA_GROUP_ID": f"phi-{unique}",
            "LABSENTINEL_KAFKA_TOPICS": json.dumps([oru, rde]),
            "LABSENTINEL_KAFKA_DEAD_LETTER_TOPIC": settings.kafka.dead_letter_topic,
            "LABSENTINEL_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "LABSENTINEL_CLINICAL_BACKFILL_DAYS": "365",
            "LABSENTINEL_API_PORT": "0",
            "LABSENTINEL_LOGGING_LEVEL": "DEBUG",
            "LABSENTINEL_LOGGING_FORMAT": "json",
            **fresh_secrets_env(),  # `run` refuses to start without them
        },
        pages,
        tmp_path / "daemon.log",
    )
    daemon.start()
    try:
        port = daemon.api_port()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = pages.read_text().splitlines() if pages.exists() else []
            if len(lines) >= len(feed.planted):
                break
            assert daemon.alive, daemon.log_path.read_text()[-2000:]
            time.sleep(0.3)
        time.sleep(1.0)  # let the garbage tail be processed and logged
        metrics = ""
        if port is not None:
            import httpx

            metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
            assert _http_status(f"http://127.0.0.1:{port}/healthz") in (200, 404)
        else:
            from prometheus_client import generate_latest

            from service.runtime.metrics import REGISTRY

            metrics = generate_latest(REGISTRY).decode()
        assert daemon.terminate(30) == 0
    finally:
        if daemon.alive:
            daemon.kill()
    log = daemon.log_path.read_text(errors="replace")
    assert "dead-lettered" in log and "delivered" in log  # the logs did cover both paths
    assert scan(log, values) == []
    assert metrics and scan(series_of(metrics), values) == []


def series_of(exposition: str) -> str:
    """The metric names and labels of a Prometheus exposition, without the sample values: a
    value is a number (a memory size, a timestamp), where a birth date's digits can occur by
    chance; a label is where patient data could leak."""
    return "\n".join(
        line.rsplit(" ", 1)[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    )


def test_dead_letter_reasons_do_not_quote_parse_field_values(sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    secret = "TESTPATIENTZQX"
    broken = [
        f"MSH|^~\\&|LAB|GH|LS|GH|20250101||ORU^R01|C1|P|2.5.1\rPID|1||{secret}^^^GH^MR||"
        f"{secret}^A||19500101\rOBX|1|NM|2777-1||{secret}|mg/dL|||||F|||{secret}\r",
        f"MSH|^~\\&|LAB|GH|LS|GH|{secret}||ORU^R01|C2|P|2.5.1\r",
        f"MSH|^~\\&|LAB|GH|LS|GH|20250101||{secret}^R01|C3|P|2.5.1\r",
        f"MSH|^~\\&|LAB|GH|LS|GH|20250101||ORU^R01|C4|P|2.5.1\rPID|1||X^^^GH^MR||A||"
        f"{secret}\rOBR|1\rOBX|1|NM|2777-1||1.0|mg/dL|||||F|||{secret}\r",
    ]
    try:
        for raw in broken:
            result = app.pipeline.process(Incoming(raw.encode(), "replay"))
            if result.outcome is Outcome.DEAD_LETTER:
                assert secret not in result.reason, result.reason
    finally:
        app.close()


def test_dead_letter_reason_for_an_unknown_unit_does_not_quote_it(sqlite_url: str) -> None:
    app = make_app(sqlite_url)
    raw = (
        b"MSH|^~\\&|LAB|GH|LS|GH|20250110080000||ORU^R01^ORU_R01|U1|P|2.5.1\r"
        b"PID|1||MRN12121212^^^GH^MR||SYNTHETIC^ALPHA||19600101|F\r"
        b"OBR|1|O1|F1|PHOS^Phosphate^L|||20250110070000\r"
        # A shifted field: the patient's name landed in OBX-6 (units).
        b"OBX|1|NM|2777-1^Phosphate^LN||2.9|TESTPATIENT^ALPHA|2.5-4.5|N|||F|||20250110070000\r"
    )
    try:
        result = app.pipeline.process(Incoming(raw, "replay"))
    finally:
        app.close()
    assert result.outcome is Outcome.DEAD_LETTER and result.error_class == "unit"
    assert "TESTPATIENT" not in result.reason
