"""`labsentinel check-config --connect` against real servers (PostgreSQL or SQLite, the Tansu
broker, an HTTP server, an aiosmtpd server) and against closed ports: one line per check,
nothing paged, exit 1 when any fails."""

from __future__ import annotations

import asyncio
import re
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.cli.main import main
from service.ingest.topics import ensure_topics
from service.runtime.settings import default_config_path
from service.tools.broker import EmbeddedBroker
from tests.alerts.pagers.servers import HttpServer, SmtpServer, refused_port, silent_tcp_port


def write_config(tmp_path: Path, channels: str) -> Path:
    """The shipped settings plus the test's channels."""
    shipped = default_config_path().read_text()
    path = tmp_path / "labsentinel.toml"
    path.write_text(shipped + "\n" + channels)
    return path


def channels_toml(webhook: str, wctp: str, smtp_port: int) -> str:
    return (
        f'[channels.hook]\ntype = "webhook"\nurl = "{webhook}"\n\n'
        f'[channels.pager]\ntype = "wctp"\nurl = "{wctp}"\nsender_id = "labsentinel"\n\n'
        f'[channels.mail]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {smtp_port}\n'
        'sender = "labsentinel@hospital.test"\n'
    )


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, unique: str) -> Iterator[dict[str, str]]:
    topics = {"oru": f"oru-{unique}", "rde": f"rde-{unique}", "dead": f"dead-{unique}"}
    monkeypatch.setenv(
        "LABSENTINEL_ROUTING_CONFIG", str(default_config_path().parent / "routing.toml")
    )
    monkeypatch.setenv("LABSENTINEL_KAFKA_TOPICS", f'["{topics["oru"]}", "{topics["rde"]}"]')
    monkeypatch.setenv("LABSENTINEL_KAFKA_DEAD_LETTER_TOPIC", topics["dead"])
    # check-config refuses weak secrets before it connects anywhere.
    monkeypatch.setenv("LABSENTINEL_API_ACK_SECRET", secrets.token_urlsafe(32))
    monkeypatch.setenv("LABSENTINEL_PATIENT_LOG_HASH_SALT", secrets.token_urlsafe(32))
    yield topics


def lines(out: str) -> dict[str, str]:
    found = {}
    for line in out.splitlines():
        match = re.match(r"^(database|broker|channel \w+ \(\w+\))\s+(ok|failed): (.+)$", line)
        if match:
            found[match.group(1)] = f"{match.group(2)}: {match.group(3)}"
    return found


def test_every_check_passes_against_real_servers(
    database_url: str,
    broker: EmbeddedBroker,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options = {"bootstrap_servers": broker.bootstrap_servers}
    asyncio.run(ensure_topics(options, env.values(), partitions=1))
    monkeypatch.setenv("LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    assert main(["db", "upgrade", "--database-url", database_url]) == 0
    with HttpServer() as hook, HttpServer() as gateway, SmtpServer() as mail:
        config = write_config(tmp_path, channels_toml(hook.url + "/hook", gateway.url, mail.port))
        capsys.readouterr()
        code = main(
            ["check-config", "--connect", "--config", str(config), "--database-url", database_url]
        )
        out = capsys.readouterr().out
        checks = lines(out)
        assert code == 0, out
        assert set(checks) == {
            "database",
            "broker",
            "channel console (console)",
            "channel hook (webhook)",
            "channel pager (wctp)",
            "channel mail (smtp)",
        }
        assert all(v.startswith("ok: ") for v in checks.values()), checks
        assert "newest revision" in checks["database"]
        assert env["oru"] in checks["broker"]
        assert "EHLO" in checks["channel mail (smtp)"] and "NOOP" in checks["channel mail (smtp)"]
        # Nothing was paged: no POST reached either HTTP server, no mail was accepted.
        assert not [r for r in hook.requests + gateway.requests if r.method == "POST"]
        assert mail.handler.messages == []


def test_closed_ports_each_fail_with_a_reason(
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with refused_port() as closed, silent_tcp_port() as silent:
        monkeypatch.setenv("LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{closed}")
        config = write_config(
            tmp_path,
            channels_toml(
                f"http://127.0.0.1:{closed}/hook", f"https://127.0.0.1:{silent}/wctp", closed
            ),
        )
        database = f"postgresql://postgres:hunter2@127.0.0.1:{closed}/labsentinel"
        code = main(
            [
                "check-config",
                "--connect",
                "--timeout",
                "1",
                "--config",
                str(config),
                "--database-url",
                database,
            ]
        )
        captured = capsys.readouterr()
    checks = lines(captured.out)
    assert code == 1
    assert checks["database"] == "failed: connection refused"
    assert checks["broker"].startswith("failed: ") and str(closed) in checks["broker"]
    assert checks["channel hook (webhook)"] == "failed: connection refused"
    assert checks["channel mail (smtp)"] == "failed: connection refused"
    assert checks["channel pager (wctp)"] == "failed: timed out"  # TLS never answered
    assert checks["channel console (console)"].startswith("ok")
    assert "hunter2" not in captured.out + captured.err, "never a password"
    assert "Traceback" not in captured.err


def test_a_database_behind_the_migrations_or_missing_fails(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a database file without any schema
    assert (
        main(
            ["check-config", "--connect", "--timeout", "1", "--database-url", f"sqlite:///{empty}"]
        )
        == 1
    )
    assert "no revision" in lines(capsys.readouterr().out)["database"]
    missing = tmp_path / "missing.db"
    assert (
        main(
            [
                "check-config",
                "--connect",
                "--timeout",
                "1",
                "--database-url",
                f"sqlite:///{missing}",
            ]
        )
        == 1
    )
    assert "no SQLite database" in lines(capsys.readouterr().out)["database"]
    assert not missing.exists(), "a check never creates the database"
