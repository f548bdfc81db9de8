"""`run` and `check-config` refuse weak secrets: the example env files as shipped, a one-letter
token, no ack secret. Each runs the real command; the refusal is exit 2, one sentence naming
the key, never the value, and `run` stops before it touches the database or the broker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.runtime.secrets_policy import fresh_secrets_env
from tests.deploy.helpers import parse_env_file

pytestmark = pytest.mark.slow  # each test runs the `labsentinel` command as a subprocess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = [
    ROOT / "deploy" / "labsentinel.env.example",
    ROOT / "deploy/systemd/labsentinel.env.example",
]


def labsentinel(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABSENTINEL_")}
    return subprocess.run(
        [sys.executable, "-m", "service.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**clean, **env},
    )


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labsentinel: insecure secrets: "), lines
    return lines[0]


@pytest.mark.parametrize("example", EXAMPLES, ids=["compose", "systemd"])
def test_the_example_env_file_as_shipped_is_refused(example: Path) -> None:
    # Its hosts do not resolve here: a refusal after a connection attempt would be exit 1.
    env = parse_env_file(example)
    for command in ("check-config", "run"):
        line = refusal(labsentinel(command, env=env))
        for key in ("api.ack_secret", "patient.log_hash_salt", "api.tokens[0]", "database.url"):
            assert f"'{key}'" in line, (command, line)
        assert "CHANGE-ME" not in line  # names the key, never quotes the value


def test_weak_values_of_the_finding_are_refused(tmp_path: Path) -> None:
    # check-config passed with a token "a", an ack secret "x" and an empty log salt.
    env = {
        "LABSENTINEL_API_TOKENS": '["a"]',
        "LABSENTINEL_API_ACK_SECRET": "x",
        "LABSENTINEL_PATIENT_LOG_HASH_SALT": "",
    }
    line = refusal(labsentinel("check-config", env=env))
    assert "'api.tokens[0]'" in line and "'api.ack_secret'" in line
    assert "'patient.log_hash_salt'" in line


def test_run_without_an_ack_secret_stops_before_the_database(tmp_path: Path) -> None:
    database = tmp_path / "never.db"
    env = {
        "LABSENTINEL_DATABASE_URL": f"sqlite:///{database}",
        "LABSENTINEL_PATIENT_LOG_HASH_SALT": fresh_secrets_env()[
            "LABSENTINEL_PATIENT_LOG_HASH_SALT"
        ],
    }
    line = refusal(labsentinel("run", env=env))
    assert "'api.ack_secret' is not set" in line and "log_hash_salt" not in line
    assert not database.exists()


def test_strong_secrets_pass_check_config() -> None:
    done = labsentinel("check-config", env=fresh_secrets_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "configuration ok"
