"""Every failure of a command ends in one plain sentence and a non-zero exit, never a traceback.

Exit 2 for configuration (a wrong value, a variable that names no setting), 1 otherwise (a
database or broker that does not answer, a reader that left the pipe). Each case runs the real
command as a subprocess; no message may carry a password, a value that may be a secret, or a
traceback.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.runtime.environment import environment_problems
from service.runtime.secrets_policy import fresh_secrets_env
from service.runtime.settings import ENV_PREFIX, Settings
from service.tools.feedgen import generate_feed
from tests.cli.test_cli import LABSENTINEL, run_cli

pytestmark = pytest.mark.slow  # every test runs the `labsentinel` command as a subprocess

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-pw"


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def last_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else ""


def assert_one_sentence(done: subprocess.CompletedProcess[str], status: int, start: str) -> str:
    """Exit ``status``; the last line of stderr starts with ``start``; no traceback anywhere."""
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr
    line = last_line(done.stderr)
    assert line.startswith(f"labsentinel: {start}"), done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    return line


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the caller's LABSENTINEL_* variables, plus strong secrets (as
    `run` requires) and ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ENV_PREFIX)}
    return {**env, **fresh_secrets_env(), **extra}


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LABSENTINEL, *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
    )


# --- the broker ------------------------------------------------------------------------------


def test_run_with_the_broker_down_names_the_address(tmp_path: Path) -> None:
    # aiokafka tries each bootstrap server once at start and gives up: `run` does not wait for
    # a broker that is not there at start (the consumer's retries are for one that goes away).
    servers = f"127.0.0.1:{closed_port()}"
    env = clean_env(
        LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS=servers,
        LABSENTINEL_API_PORT="0",
        LABSENTINEL_DATABASE_URL=f"sqlite:///{tmp_path / 'run.db'}",
    )
    done = run("run", env=env, timeout=120)
    line = assert_one_sentence(done, 1, "Kafka unreachable: ")
    assert servers in line and "kafka.bootstrap_servers" in line
    assert "KafkaConnectionError" not in line


# --- the database ----------------------------------------------------------------------------

COMMANDS = [["run"], ["db", "current"], ["alerts", "list"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_postgresql_down_names_host_and_port_never_the_password(command: list[str]) -> None:
    port = closed_port()
    url = f"postgresql://labsentinel:{PASSWORD}@127.0.0.1:{port}/labsentinel"
    env = clean_env(
        LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{closed_port()}",
        LABSENTINEL_API_PORT="0",
    )
    done = run(*command, "--database-url", url, env=env)
    line = assert_one_sentence(done, 1, "database unreachable: ")
    assert f"127.0.0.1:{port}" in line and "Connection refused" in line
    assert "OperationalError" not in line and "sqlalche.me" not in done.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_sqlite_in_a_missing_folder_is_named_and_not_created(
    command: list[str], tmp_path: Path
) -> None:
    database = tmp_path / "no-such-folder" / "labsentinel.db"
    env = clean_env(LABSENTINEL_API_PORT="0")
    done = run(*command, "--database-url", f"sqlite:///{database}", env=env)
    line = assert_one_sentence(done, 1, "database unreachable: ")
    assert str(database) in line and "does not exist" in line
    assert not database.parent.exists(), "a mistyped path must not create a fresh database"


@pytest.mark.parametrize("command", [["db", "current"], ["alerts", "list"]], ids=" ".join)
def test_reading_a_missing_sqlite_file_does_not_create_an_empty_one(
    command: list[str], tmp_path: Path
) -> None:
    # `db current` printed "schema revision: None" and `alerts list` nothing, from a database
    # they had just created: as if the real one were empty.
    database = tmp_path / "labsentinel.db"
    done = run(*command, "--database-url", f"sqlite:///{database}", env=clean_env())
    line = assert_one_sentence(done, 1, "database unreachable: ")
    assert f"no SQLite database at {database}" in line and "db upgrade" in line
    assert not database.exists()


def test_db_upgrade_creates_a_sqlite_database_in_an_existing_folder(tmp_path: Path) -> None:
    database = tmp_path / "labsentinel.db"
    done = run("db", "upgrade", "--database-url", f"sqlite:///{database}", env=clean_env())
    assert done.returncode == 0, done.stderr
    assert database.exists()


# --- configuration from the environment ------------------------------------------------------


@pytest.mark.parametrize("command", [["check-config"], ["run"]], ids=" ".join)
def test_tokens_that_are_not_a_json_list_name_the_variable_not_the_value(
    command: list[str],
) -> None:
    env = clean_env(LABSENTINEL_API_TOKENS="nurse-token-123")
    done = run(*command, env=env)
    line = assert_one_sentence(done, 2, "invalid configuration: ")
    assert "LABSENTINEL_API_TOKENS" in line and "'api.tokens'" in line and "JSON list" in line
    assert "nurse-token-123" not in done.stderr, "a token is a secret: never echoed"
    assert "SettingsError" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


# Every command that reads the settings (demo, bench and generate-feed read none).
SETTINGS_COMMANDS = [
    ["check-config"],
    ["run"],
    ["replay", "feed.hl7"],
    ["db", "current"],
    ["db", "upgrade"],
    ["alerts", "list"],
    ["history", "1"],
    ["silence", "list"],
    ["escalations", "run"],
    ["dlq", "list"],
    ["oncall", "show", "all"],
    ["send-test-page", "all"],
    ["produce", "feed.hl7"],
    ["mllp", "--listen", "127.0.0.1:0"],
]


@pytest.mark.parametrize("command", SETTINGS_COMMANDS, ids=" ".join)
def test_a_misspelt_variable_stops_every_command_naming_the_likely_one(
    command: list[str], tmp_path: Path
) -> None:
    database = tmp_path / "typo.db"
    env = clean_env(LABSENTINEL_DATABSE_URL=f"sqlite:///{database}")
    done = run(*command, env=env)
    line = assert_one_sentence(done, 2, "invalid configuration: ")
    assert (
        "unknown environment variable LABSENTINEL_DATABSE_URL "
        "(did you mean LABSENTINEL_DATABASE_URL?)" in line
    )
    assert not database.exists()


def test_an_unknown_variable_without_a_near_match_is_named_alone() -> None:
    done = run("check-config", env=clean_env(LABSENTINEL_FLUX_CAPACITOR="1.21"))
    line = assert_one_sentence(done, 2, "invalid configuration: ")
    assert "unknown environment variable LABSENTINEL_FLUX_CAPACITOR;" in line
    assert "did you mean" not in line and "1.21" not in line


def test_the_documented_variables_and_nested_forms_are_accepted(tmp_path: Path) -> None:
    # DESIGN.md's list, each form settings.py reads (a key, a whole section as JSON, a named
    # channel as JSON, a list as JSON, any case), and the variables only the tests and the
    # soak tool read.
    env = clean_env(
        LABSENTINEL_DATABASE_URL=f"sqlite:///{tmp_path / 'ok.db'}",
        LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS="kafka1:9092,kafka2:9092",
        LABSENTINEL_API_PORT="8081",
        LABSENTINEL_API_BASE_URL="https://labsentinel.example.org",
        LABSENTINEL_API_TOKENS=f'["{"1" * 32}", "ward-pc:viewer:{"2" * 32}"]',
        LABSENTINEL_API_ACK_SECRET="ack-secret-" + "3" * 32,
        LABSENTINEL_PATIENT_LOG_HASH_SALT="salt-" + "4" * 32,
        LABSENTINEL_KAFKA_TOPICS='["hl7.oru", "hl7.rde"]',
        LABSENTINEL_LOGGING='{"level": "WARNING"}',
        LABSENTINEL_CHANNELS_AUDIT='{"type": "console"}',
        labsentinel_hospital_timezone="Europe/Berlin",
        LABSENTINEL_TEST_PG_URL="postgresql://postgres@127.0.0.1:5432/postgres",
        LABSENTINEL_REFERENCE_EXAMPLES="300",
        LABSENTINEL_PG_BINDIR="/usr/lib/postgresql/16/bin",
    )
    done = run("check-config", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "configuration ok"


def test_every_variable_the_project_names_is_a_setting() -> None:
    # The README, the deployment files, the tests and the code: a variable they name that the
    # check refused would stop a documented set-up. This file's typos are excluded, and the
    # one service/runtime/environment.py spells wrong on purpose to explain the check.
    here = Path(__file__).resolve()
    files = [ROOT / "README.md"]
    for folder in ("deploy", "tests", "service"):
        files += [
            p
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.resolve() != here and "__pycache__" not in p.parts
        ]
    names: set[str] = set()
    for path in files:
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        names |= set(re.findall(r"\bLABSENTINEL_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert {"LABSENTINEL_DATABASE_URL", "LABSENTINEL_API_TOKENS"} <= names
    names.discard("LABSENTINEL_DATABSE_URL")
    # "1" is JSON, so only a name that is no setting can be reported.
    problems = environment_problems(dict.fromkeys(names, "1"), Settings, ENV_PREFIX)
    assert problems == []


# --- the reader of our output ----------------------------------------------------------------


def test_a_reader_that_leaves_the_pipe_early_ends_the_command_quietly(tmp_path: Path) -> None:
    # `alerts list --json | head -1`: the reader goes away before all is written.
    feed = generate_feed(
        messages=300, planted=2, seed=5, start=datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    )
    hl7 = tmp_path / "feed.hl7"
    hl7.write_bytes(feed.to_file_bytes())
    url = f"sqlite:///{tmp_path / 'pipe.db'}"
    replayed = run_cli("replay", str(hl7), "--database-url", url)
    assert replayed.returncode == 0, replayed.stderr
    listed = run_cli("alerts", "list", "--json", "--database-url", url)
    assert listed.returncode == 0 and '"severity"' in listed.stdout, listed.stderr
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write: no race with the child
    try:
        done = subprocess.run(
            [*LABSENTINEL, "alerts", "list", "--json", "--database-url", url],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        os.close(write_end)
    # Exit 1: not all of the output was delivered (see service/cli/main.py), and nothing said.
    assert done.returncode == 1
    assert done.stderr == ""
