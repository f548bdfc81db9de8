"""The commands of DESIGN.md's contract that feed or rehearse: `--version`, `replay
--no-deliver`, `produce` and `mllp`, each run as the real command."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from service.tools.broker import EmbeddedBroker, free_port
from tests.cli.test_cli import LABSENTINEL, read_jsonl, run_cli
from tests.ingest.mllp.helpers import fields_of, frame, oru, rde, read_topic
from tests.messages import DENOSUMAB
from tests.messages import oru as lab_result
from tests.messages import rde as pharmacy_order

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _interaction_feed(path: Path) -> None:
    """Denosumab, then ferric carboxymaltose, then a low phosphate: one page."""
    d14 = T0 + timedelta(days=14)
    messages = [
        pharmacy_order("MRN7001", T0 - timedelta(days=14), drug=DENOSUMAB, route="SC"),
        pharmacy_order("MRN7001", T0),
        lab_result("MRN7001", d14, value="1.4"),
    ]
    path.write_bytes(b"\n\n".join(m.replace(b"\r", b"\n") for m in messages))


def test_version_prints_the_version() -> None:
    done = run_cli("--version")
    assert done.returncode == 0 and done.stdout.startswith("labsentinel ")


def test_replay_no_deliver_pages_nobody_but_writes_pages_out(tmp_path: Path) -> None:
    # The shipped configuration routes pages to the console: a rehearsal must not print them.
    feed = tmp_path / "feed.hl7"
    _interaction_feed(feed)
    db = f"sqlite:///{tmp_path / 'rehearsal.db'}"
    pages = tmp_path / "pages.jsonl"
    rehearsal = run_cli(
        "replay", str(feed), "--database-url", db, "--pages-out", str(pages), "--no-deliver"
    )
    assert rehearsal.returncode == 0, rehearsal.stderr
    assert "----- page to" not in rehearsal.stdout
    assert "deliveries held" in rehearsal.stdout and "deliveries sent" not in rehearsal.stdout
    alerts = [p for p in read_jsonl(pages) if p["event"] == "alert"]
    assert [(a["patient"]["id"], a["severity"]) for a in alerts] == [("MRN7001", "high")]
    # The same feed without --no-deliver does reach the console: the test can fail.
    live = run_cli(
        "replay",
        str(feed),
        "--database-url",
        f"sqlite:///{tmp_path / 'live.db'}",
        "--pages-out",
        str(tmp_path / "live.jsonl"),
    )
    assert live.returncode == 0 and "----- page to" in live.stdout


def test_no_deliver_without_pages_out_names_the_problem(tmp_path: Path) -> None:
    feed = tmp_path / "feed.hl7"
    _interaction_feed(feed)
    done = run_cli("replay", str(feed), "--no-deliver")
    assert done.returncode == 2 and "--pages-out" in done.stderr


def test_no_deliver_refuses_the_live_database(tmp_path: Path) -> None:
    # A rehearsal in the live database would put its alerts on the worklist, and the running
    # daemon's dispatcher would deliver the pages it queued.
    feed = tmp_path / "feed.hl7"
    _interaction_feed(feed)
    live = f"sqlite:///{tmp_path / 'live.db'}"
    pages = str(tmp_path / "pages.jsonl")
    first = run_cli(
        "replay", str(feed), "--pages-out", pages, env={"LABSENTINEL_DATABASE_URL": live}
    )
    assert first.returncode == 0, first.stderr  # the live database has processed messages
    before = (tmp_path / "live.db").read_bytes()
    for database in ([], ["--database-url", live]):
        done = run_cli(
            "replay", str(feed), "--pages-out", pages, "--no-deliver", *database,
            env={"LABSENTINEL_DATABASE_URL": live},
        )  # fmt: skip
        assert done.returncode == 2, done.stdout
        assert "--database-url of its own" in done.stderr
    assert (tmp_path / "live.db").read_bytes() == before


def test_no_deliver_rehearses_in_a_database_that_holds_nothing_yet(tmp_path: Path) -> None:
    # The contract's `replay --no-deliver --pages-out` on a fresh configured database.
    feed = tmp_path / "feed.hl7"
    _interaction_feed(feed)
    pages = tmp_path / "pages.jsonl"
    done = run_cli(
        "replay", str(feed), "--pages-out", str(pages), "--no-deliver",
        env={"LABSENTINEL_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "----- page to" not in done.stdout and "deliveries held" in done.stdout
    assert [p["patient"]["id"] for p in read_jsonl(pages) if p["event"] == "alert"] == ["MRN7001"]


def _broker_env(broker: EmbeddedBroker, unique: str) -> dict[str, str]:
    return {
        "LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "LABSENTINEL_KAFKA_TOPICS": f'["oru-{unique}", "rde-{unique}"]',
        "LABSENTINEL_KAFKA_DEAD_LETTER_TOPIC": f"dlq-{unique}",
    }


def test_produce_publishes_each_message_to_the_topic_of_its_type(
    broker: EmbeddedBroker, unique: str, tmp_path: Path
) -> None:
    feed = tmp_path / "feed.hl7"
    _interaction_feed(feed)
    with feed.open("ab") as out:
        out.write(b"\n\nthis is not HL7\n")
    done = run_cli("produce", str(feed), env=_broker_env(broker, unique))
    assert done.returncode == 0, done.stderr
    assert "published 3 messages" in done.stdout and "skipped 1" in done.stdout
    results = asyncio.run(read_topic(broker, f"oru-{unique}", 1))
    orders = asyncio.run(read_topic(broker, f"rde-{unique}", 2))
    assert len(results) == 1 and len(orders) == 2
    assert all(r.key == b"MRN7001" for r in (*results, *orders))


def test_mllp_command_acknowledges_each_frame_and_stops_on_sigterm(
    broker: EmbeddedBroker, unique: str
) -> None:
    port = free_port()
    process = subprocess.Popen(
        [*LABSENTINEL, "mllp", "--listen", f"127.0.0.1:{port}"],
        env={**os.environ, **_broker_env(broker, unique)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        connection = _connect(port, process)
        with connection:
            for control_id, message in (("CLI-1", oru("CLI-1")), ("CLI-2", rde("CLI-2"))):
                connection.sendall(frame(message))
                ack = fields_of(_read_frame(connection))
                assert ack["MSA"][1:3] == ["AA", control_id]
            connection.sendall(frame(b"not hl7 at all"))
            assert fields_of(_read_frame(connection))["MSA"][1] == "AR"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]


def _connect(port: int, process: subprocess.Popen[bytes]) -> socket.socket:
    """Connect once the gateway listens (by event: the port accepts), or fail with its output."""
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(process.stderr.read().decode(errors="replace")[-2000:])
        try:
            connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            time.sleep(0.1)
            continue
        connection.settimeout(60)
        return connection
    raise AssertionError("the gateway never listened")


def _read_frame(connection: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\x1c\r"):
        chunk = connection.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before the ACK")
        data += chunk
    return data
