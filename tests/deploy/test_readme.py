"""deploy/README.md: every `labsentinel ...` command in it parses with the real CLI, the
commands the Dockerfile, compose file and systemd unit run are the ones it documents, and
the files it names exist; and every `labsentinel ...` of the root README's first-day
walkthrough is a command the CLI has."""

from __future__ import annotations

import json
import re
import shlex

import pytest

from tests.deploy.helpers import DEPLOY, ROOT, check_cli, cli_invocations, cli_subcommands

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


WALKTHROUGH = "### A first day, end to end"
# What the walkthrough must still show, so that losing a step (or the section) fails here.
WALKTHROUGH_COMMANDS = {
    "check-config",
    "db",
    "run",
    "generate-feed",
    "produce",
    "mllp",
    "alerts",
    "history",
    "routes",
    "oncall",
    "dlq",
    "replay",
    "escalations",
}


def walkthrough_commands() -> list[str]:
    """The `$ ...` command lines of the root README's first-day walkthrough."""
    text = (ROOT / "README.md").read_text()
    start = text.index(WALKTHROUGH) + len(WALKTHROUGH)
    end = re.search(r"^#{2,3} ", text[start:], re.M)  # the next section or subsection
    section = text[start : start + end.start()] if end else text[start:]
    blocks = re.findall(r"```[a-z]*\n(.*?)```", section, flags=re.S)
    return [line[2:] for block in blocks for line in block.splitlines() if line.startswith("$ ")]


def walkthrough_invocations() -> list[list[str]]:
    """The arguments after `labsentinel` of each simple command in the walkthrough's lines
    (split at pipes, `&&`, `;` and `&`; redirections dropped; quotes as the shell reads them)."""
    found = []
    for line in walkthrough_commands():
        line = re.sub(r"\s\d?>>?\s*\S+", " ", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in ("|", "||", "&&", ";", "&"):
                words = [w.rsplit("/", 1)[-1] for w in command]
                if "labsentinel" in words:
                    found.append(command[words.index("labsentinel") + 1 :])
                command = []
            else:
                command.append(token)
    return found


def test_walkthrough_commands_exist_in_the_cli():
    """Each `labsentinel ...` the walkthrough shows is a subcommand of the real parser and
    parses as written, so the walkthrough cannot drift from the CLI."""
    invocations = walkthrough_invocations()
    named = {argv[0] for argv in invocations if argv}
    assert named >= WALKTHROUGH_COMMANDS, sorted(WALKTHROUGH_COMMANDS - named)
    assert named <= cli_subcommands(), sorted(named - cli_subcommands())
    problems = [p for argv in invocations if (p := check_cli(argv)) is not None]
    assert not problems, problems
