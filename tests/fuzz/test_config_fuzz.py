"""Config fuzzing: a wrong type or value for any key of the settings tree stops start-up
(load_settings → ConfigError, `labsentinel check-config` → exit 2) with a message naming it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, SecretStr

from service.runtime.settings import ConfigError, Settings, default_config_path, load_settings

SHIPPED = tomllib.loads(default_config_path().read_text())


def leaves(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, annotation) of every scalar or list setting of the tree."""
    out = []
    for name, info in model.model_fields.items():
        if name == "config_dir":
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out += leaves(annotation, f"{prefix}{name}.")
        elif typing.get_origin(annotation) is not dict:
            out.append((f"{prefix}{name}", annotation))
    return out


def bad_values(annotation: Any) -> list[Any]:
    """Values of the wrong type for ``annotation`` (never accepted, even in lax mode)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)][0]
        return [v for v in bad_values(inner) if v != ""]
    if origin is Literal:
        return ["no-such-choice", 17, ["PLAINTEXT"]]
    if origin is tuple:
        return ["not-a-list", 5, {"a": 1}]
    if annotation is bool:
        return ["maybe", 7, [True], {"a": 1}]
    if annotation is int:
        return ["lots", 2.5, [1], {"a": 1}]
    if annotation is float:
        return ["quick", [1.0], {"a": 1}, True and "1.2.3"]
    if annotation in (str, SecretStr):
        return [12, 3.5, [1, 2], {"a": 1}, True]
    raise AssertionError(f"no bad values for {annotation}")


LEAVES = leaves()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_toml(data: dict[str, Any], path: Path) -> None:
    lines: list[str] = []

    def table(prefix: str, body: dict[str, Any]) -> None:
        scalars = {k: v for k, v in body.items() if not isinstance(v, dict) or not v or
                   not all(isinstance(x, dict) for x in v.values()) and prefix}  # fmt: skip
        nested = {k: v for k, v in body.items() if k not in scalars}
        if prefix:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {toml_value(v)}" for k, v in scalars.items())
        for key, sub in nested.items():
            table(f"{prefix}.{key}" if prefix else key, sub)

    table("", data)
    path.write_text("\n".join(lines) + "\n")


def with_bad(key: str, value: Any) -> dict[str, Any]:
    data = tomllib.loads(default_config_path().read_text())
    node = data
    *sections, last = key.split(".")
    for section in sections:
        node = node.setdefault(section, {})
    node[last] = value
    return data


def test_the_writer_round_trips_the_shipped_file(tmp_path: Path) -> None:
    path = tmp_path / "same.toml"
    write_toml(SHIPPED, path)
    assert tomllib.loads(path.read_text()) == SHIPPED
    load_settings(path)  # and it is valid


def test_every_leaf_has_bad_values() -> None:
    assert len(LEAVES) > 40
    for _, annotation in LEAVES:
        assert bad_values(annotation)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_invalid_value_for_any_key_names_the_key(data: st.DataObject) -> None:
    key, annotation = data.draw(st.sampled_from(LEAVES), label="key")
    value = data.draw(st.sampled_from(bad_values(annotation)), label="value")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labsentinel.toml"
        write_toml(with_bad(key, value), path)
        with pytest.raises(ConfigError) as raised:
            load_settings(path)
    assert f"'{key}" in str(raised.value), str(raised.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("kafka.max_batch_records", 0),  # below the minimum of 1
        ("kafka.max_batch_records", 10_000_000),  # above the maximum
        ("database.url", "mysql://x"),  # not a supported database
        ("hospital.timezone", "Mars/Olympus_Mons"),  # not an IANA zone
        ("clinical.iron_window_days", 90),  # outside 21-35
        ("api.port", 70000),
        ("dispatcher.poll_interval_s", 0),  # must be > 0
        ("kafka.topics", []),  # at least one topic
        ("kafka.no_such_key", 1),  # typo: unknown keys are refused
    ],
)
def test_out_of_range_values_name_the_key(key: str, value: Any, tmp_path: Path) -> None:
    path = tmp_path / "labsentinel.toml"
    write_toml(with_bad(key, value), path)
    with pytest.raises(ConfigError, match=f"'{key}"):
        load_settings(path)


def test_environment_values_are_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABSENTINEL_KAFKA_MAX_BATCH_RECORDS", "lots")
    with pytest.raises(ConfigError, match="'kafka.max_batch_records'"):
        load_settings()


@pytest.mark.slow
def test_check_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "labsentinel.toml"
    write_toml(with_bad("dispatcher.deadline_s", "forever"), path)
    done = subprocess.run(
        [sys.executable, "-m", "service.cli.main", "check-config", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("LABSENTINEL_")},
    )
    assert done.returncode == 2
    assert "dispatcher.deadline_s" in done.stderr
