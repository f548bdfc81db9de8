"""deploy/README.md: every `labsentinel ...` command in it parses with the real CLI, the
commands the Dockerfile, compose file and systemd unit run are the ones it documents, and
the files it names exist."""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy.helpers import DEPLOY, check_cli, cli_invocations

pytestmark = pytest.mark.slow  # runs the deploy validators (docker, helm, promtool, ...)

README = DEPLOY / "README.md"


def code_text() -> str:
    text = README.read_text()
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    prose = re.sub(r"```[a-z]*\n.*?```", "", text, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", prose)
    return "\n".join(blocks + spans)


def test_every_documented_command_parses():
    invocations = cli_invocations(code_text())
    assert len(invocations) >= 10
    problems = [p for argv in invocations if (p := check_cli(argv)) not in (None, "planned")]
    assert not problems, problems


def test_documents_what_the_image_and_unit_run():
    text = README.read_text()
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (.*)$", dockerfile, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (.*)$", dockerfile, re.M).group(1))
    assert " ".join(entrypoint + cmd) in text
    assert "labsentinel db upgrade --config /etc/labsentinel/labsentinel.toml" in text
    unit = (DEPLOY / "systemd" / "labsentinel.service").read_text()
    for line in re.findall(r"^ExecStart(?:Pre)?=(.*)$", unit, re.M):
        assert line.replace("/opt/labsentinel/bin/", "") in text


def test_named_files_exist():
    text = README.read_text()
    for name in (
        "compose.yaml",
        "Dockerfile",
        "helm/labsentinel",
        "systemd/labsentinel.service",
        "prometheus/rules.yml",
        "prometheus/rules_test.yml",
        "grafana/labsentinel.json",
        "labsentinel.env.example",
        "compose-secrets.sh",
    ):
        assert name in text, name
        assert (DEPLOY / name).exists(), name


def test_cli_invocation_extraction():
    snippet = "\n".join(
        [
            "docker compose exec labsentinel labsentinel db current  # comment",
            "helm upgrade --install labsentinel deploy/helm/labsentinel -n x",
            "journalctl -u labsentinel -f",
            "createdb -O labsentinel labsentinel",
            ".venv/bin/labsentinel demo | tee out",
            "sudo -u labsentinel sh -c '/opt/labsentinel/bin/labsentinel run --config a.toml'",
        ]
    )
    assert cli_invocations(snippet) == [
        ["db", "current"],
        ["demo"],
        ["run", "--config", "a.toml"],
    ]
