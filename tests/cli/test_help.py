"""Every command and option of `labsentinel` explains itself in `--help`."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import pytest

from service.cli.main import build_parser, main

PLACEHOLDER = "see `alerts ack --help`"


def walk(parser: argparse.ArgumentParser, path: str = "labsentinel") -> Iterator[tuple[str, Any]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", helps.get(name)
                yield from walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            name = "/".join(action.option_strings) or action.dest
            yield f"{path} {name}", action.help


def test_every_command_and_option_has_help() -> None:
    missing = [
        where
        for where, text in walk(build_parser())
        if not text or not str(text).strip() or PLACEHOLDER in str(text)
    ]
    assert missing == []


def test_the_walk_finds_what_it_should() -> None:
    found = dict(walk(build_parser()))
    assert "labsentinel alerts ack --action" in found
    assert "labsentinel escalations run --dry-run" in found


def test_alerts_ack_help_lists_the_actions_and_their_meaning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service.notify.ack_tokens import ACK_ACTIONS

    with pytest.raises(SystemExit):
        main(["alerts", "ack", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for key, label in ACK_ACTIONS.items():
        assert key in out and " ".join(label.split()) in out
