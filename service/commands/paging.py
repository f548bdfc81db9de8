"""CLI commands of this concern (see service/commands/__init__.py for the contract)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from service.settings import Settings

COMMANDS: tuple[str, ...] = ()


def register(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    config_args: Callable[[argparse.ArgumentParser], None],
) -> None:
    return None


def handle(args: argparse.Namespace, settings: Settings) -> int:
    raise AssertionError(f"unhandled command {args.command}")
