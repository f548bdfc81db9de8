"""`labsentinel run` as a process: `kill -HUP` reloads routing and rosters; a bad routing file
is refused with the file and the key in the log and the daemon goes on with the old one.

Each step waits for the daemon's own log line (read as it is written), never a delay.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
LABSENTINEL = [sys.executable, "-m", "service.cli.main"]
WAIT_S = 90  # a safety net for a loaded machine; every wait ends on a log line


class Lines:
    """The process's stderr, line by line, as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stderr is not None
        threading.Thread(target=self._read, args=(process.stderr,), daemon=True).start()

    def _read(self, stream: Iterable[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)  # the process has closed its stderr: it has ended

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no log line with {text!r}; saw:\n{''.join(self.seen[-30:])}")


@pytest.mark.slow
@pytest.mark.kafka
def test_sighup_reloads_and_a_bad_file_keeps_the_old(broker, unique: str, tmp_path: Path) -> None:
    for name in ("labsentinel.toml", "routing.toml"):
        shutil.copy(CONFIGS / name, tmp_path / name)
    config = tmp_path / "labsentinel.toml"
    env = {
        "LABSENTINEL_DATABASE_URL": f"sqlite:///{tmp_path / 'run.db'}",
        "LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "LABSENTINEL_KAFKA_GROUP_ID": f"reload-{unique}",
        "LABSENTINEL_KAFKA_TOPICS": json.dumps([f"oru-{unique}", f"rde-{unique}"]),
        "LABSENTINEL_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LABSENTINEL_API_PORT": "0",
        "LABSENTINEL_LOGGING_FORMAT": "text",
        "LABSENTINEL_API_ACK_SECRET": "reload-test-ack-secret-0123456789abcdef",
        "LABSENTINEL_PATIENT_LOG_HASH_SALT": "reload-test-salt-0123456789abcdefghij",
    }
    process = subprocess.Popen(
        [*LABSENTINEL, "run", "--config", str(config)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = Lines(process)
        started = lines.wait_for("SIGHUP reloads them")
        now = datetime.now(UTC)
        override = subprocess.run(
            [*LABSENTINEL, "oncall", "override", "--config", str(config), "--team", "icu",
             "--person", "icu-attending", "--from", (now - timedelta(hours=1)).isoformat(),
             "--until", (now + timedelta(hours=1)).isoformat()],
            env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert override.returncode == 0, override.stderr
        process.send_signal(signal.SIGHUP)
        reloaded = lines.wait_for("routing and rosters reloaded")
        version = reloaded.split("version=")[1].split()[0]
        assert version not in started  # a new version is in use

        routing = tmp_path / "routing.toml"
        routing.write_text(routing.read_text().replace('team = "nephrology"', 'team = "nope"'))
        process.send_signal(signal.SIGHUP)
        refused = lines.wait_for("routing reload failed")
        assert str(routing) in refused and "routes[1].team" in refused
        assert f"version={version}" in refused  # the one still in use
        assert process.poll() is None  # still running

        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
