"""deploy/Dockerfile, checked statically (no Docker engine here): non-root, healthcheck,
the commands it runs exist in the CLI, dependencies come from pyproject.toml."""

from __future__ import annotations

import json
import re
import tomllib

import pytest

from tests.deploy.helpers import DEPLOY, ROOT, check_cli, run, tool

pytestmark = pytest.mark.slow  # runs the deploy validators (docker, helm, promtool, ...)

DOCKERFILE = DEPLOY / "Dockerfile"


def instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined; optionally one stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, args = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            current = args.split(" AS ")[-1].strip() if " AS " in args else args
        if stage is None or current == stage:
            result.append((word, args.strip()))
    return result


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec (JSON) form: {args}"
    return value


def test_multi_stage_slim_python_311():
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    arg = next(args for word, args in instructions() if word == "ARG" and "PYTHON_IMAGE" in args)
    assert re.search(r"python:3\.11-slim", arg), arg
    assert all("${PYTHON_IMAGE}" in f for f in froms)


def test_runtime_runs_as_non_root_user():
    runtime = instructions("runtime")
    users = [args for word, args in runtime if word == "USER"]
    assert users, "runtime stage needs USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, user
    # Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
    assert user.isdigit()
    created = " ".join(args for word, args in runtime if word == "RUN")
    assert "useradd" in created and "--uid" in created


def test_healthcheck_hits_healthz_with_python():
    health = [args for word, args in instructions("runtime") if word == "HEALTHCHECK"]
    assert len(health) == 1
    command = exec_form(health[0].split(" CMD ", 1)[1])
    assert command[0] == "python" and command[1] == "-c"
    assert "/healthz" in command[2] and "urllib.request" in command[2]
    compile(command[2], "<healthcheck>", "exec")
    assert "curl" not in health[0]


def test_exposes_api_port_and_runs_the_daemon():
    runtime = instructions("runtime")
    assert ("EXPOSE", "8080 9464") in runtime  # the API, and /metrics on its own port
    entrypoint = exec_form(next(a for w, a in runtime if w == "ENTRYPOINT"))
    cmd = exec_form(next(a for w, a in runtime if w == "CMD"))
    assert entrypoint == ["labsentinel"]
    assert cmd == ["run", "--config", "/etc/labsentinel/labsentinel.toml"]
    assert check_cli(cmd) is None
    assert check_cli(["db", "upgrade", "--config", "/etc/labsentinel/labsentinel.toml"]) is None


def test_listens_on_all_interfaces_via_real_settings():
    from tests.deploy.helpers import check_settings_env

    env = {}
    for word, args in instructions("runtime"):
        if word == "ENV":
            env.update(dict(re.findall(r"(LABSENTINEL_\w+)=(\S+)", args)))
    assert env.get("LABSENTINEL_API_HOST") == "0.0.0.0"
    check_settings_env(env)


def test_configs_copied_to_etc():
    copies = [args for word, args in instructions("runtime") if word == "COPY"]
    config_copy = next(c for c in copies if c.rstrip().endswith("/etc/labsentinel/"))
    assert config_copy.split()[0] == "configs/*.toml"
    names = {p.name for p in (ROOT / "configs").glob("*.toml")}
    assert {"labsentinel.toml", "drugs.toml", "labs.toml"} <= names


def test_dependencies_come_from_pyproject():
    """The image installs the project's own wheel: pyproject.toml is the one dependency list."""
    build = instructions("build")
    text = " ".join(args for word, args in build)
    assert "requirements" not in DOCKERFILE.read_text()
    assert re.search(r"pip wheel --wheel-dir /wheels \.", text)
    assert "--no-index --find-links /wheels labsentinel" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    copied = {
        source.rstrip("/") for word, args in build if word == "COPY" for source in args.split()[:-1]
    }
    packages = project["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert pattern.rstrip("*") in copied, f"package {pattern} is not copied into the build"
    assert "pyproject.toml" in copied
    assert project["project"]["readme"] in copied
    assert project["project"]["scripts"]["labsentinel"] == "service.cli.main:main"


def test_dockerignore_lets_in_what_is_copied():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for word, args in instructions("build"):
        if word == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert source.rstrip("/") in allowed, source


def test_hadolint():
    hadolint = tool("hadolint")
    result = run([hadolint, "--failure-threshold", "warning", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["Dockerfile", "compose.yaml"])
def test_deploy_files_exist(name):
    assert (DEPLOY / name).is_file()
