"""deploy/compose-secrets.sh: every secret file 0600, owned by who must read it, strong enough
for `labsentinel run`, and never rotated by a second run."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from service.runtime.secrets_policy import secret_problems
from service.runtime.settings import load_settings
from tests.deploy.helpers import DEPLOY, parse_env_file, run, yaml_module

SECRET_FILES = ("secrets/postgres_password", "secrets/grafana_admin_password", "labsentinel.env")


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "deploy"
    shutil.copytree(
        DEPLOY, copy, ignore=shutil.ignore_patterns("secrets", "labsentinel.env", ".env")
    )
    return copy


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_files_are_0600(deploy_copy: Path) -> None:
    # The finding: the PostgreSQL and Grafana password files were written 0644.
    result = run(["sh", str(deploy_copy / "compose-secrets.sh")])
    assert result.returncode == 0, result.stderr
    for name in SECRET_FILES:
        assert mode(deploy_copy / name) == 0o600, name
    compose_env = parse_env_file(deploy_copy / ".env")
    expected = "472" if os.geteuid() == 0 else str(os.geteuid())
    assert compose_env == {"SECRETS_UID": expected}
    if os.geteuid() == 0:  # Grafana's own user owns the file it must read
        assert (deploy_copy / "secrets" / "grafana_admin_password").stat().st_uid == 472


def test_files_of_an_older_run_are_tightened(deploy_copy: Path) -> None:
    (deploy_copy / "secrets").mkdir(exist_ok=True)
    old = deploy_copy / "secrets" / "postgres_password"
    old.write_text("kept-password-of-an-earlier-run-0123456789\n")
    old.chmod(0o644)
    assert run(["sh", str(deploy_copy / "compose-secrets.sh")]).returncode == 0
    assert mode(old) == 0o600
    assert old.read_text() == "kept-password-of-an-earlier-run-0123456789\n"  # not rotated


def test_the_written_env_file_passes_the_secrets_policy(
    deploy_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["sh", str(deploy_copy / "compose-secrets.sh")]).returncode == 0
    for key in list(os.environ):
        if key.startswith("LABSENTINEL_"):
            monkeypatch.delenv(key)
    for key, value in parse_env_file(deploy_copy / "labsentinel.env").items():
        monkeypatch.setenv(key, value)
    assert secret_problems(load_settings()) == []


def test_grafana_runs_as_the_owner_of_its_password_file() -> None:
    compose = yaml_module().safe_load((DEPLOY / "compose.yaml").read_text())
    grafana = compose["services"]["grafana"]
    assert grafana["user"] == "${SECRETS_UID:-472}:0"
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
    assert "/.env" in (DEPLOY / ".gitignore").read_text().splitlines()
