"""Route matching and routing-config validation (errors name the key)."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.routing import RoutingError, Subject, load_routing

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "routing.toml"
UTC_ZONE = ZoneInfo("UTC")


def shipped() -> dict[str, Any]:
    return tomllib.loads(SHIPPED.read_text())


CONFIG = load_routing(shipped(), UTC_ZONE, ["console"])


@pytest.mark.parametrize(
    ("subject", "team"),
    [
        (Subject("r", "high", "ICU/582/B", "GH", "MED"), "icu"),  # location beats service
        (Subject("r", "high", "micu/1/A", "GH", ""), "icu"),  # case-insensitive pattern
        (Subject("r", "high", "6S/101/A", "GH", "NEP"), "nephrology"),
        (Subject("r", "critical", "ONC/3/A", "GH", "ONC"), "oncology"),
        (Subject("r", "high", "4W/1/A", "GH", "MED"), "medicine"),
        (Subject("r", "high", "ER/1/A", "GH", "EMR"), "pharmacy"),  # no match: fallback
        (Subject("r", "high", "", "", ""), "pharmacy"),
    ],
)
def test_route(subject: Subject, team: str) -> None:
    assert CONFIG.route(subject) == team


def test_targets_page_only_for_high_and_critical() -> None:
    at = datetime(2024, 1, 9, 9, 0, tzinfo=UTC)
    page = CONFIG.target("pharmacy", "critical", at)
    assert page.pages and page.recipients == ("pharmacist-b",)
    assert page.deliveries == (("console", "pager-4902"),)
    assert CONFIG.target("pharmacy", "high", at, tier=2).recipients == ("pharmacy-lead",)
    warning = CONFIG.target("pharmacy", "warning", at)
    assert not warning.pages and warning.deliveries == ()  # the worklist only


def _broken(path: list[str], value: Any) -> dict[str, Any]:
    doc = shipped()
    node = doc
    for key in path[:-1]:
        node = node[key] if not key.isdigit() else node[int(key)]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        (_broken(["teams", "icu", "policy"], "nope"), "teams.icu.policy"),
        (_broken(["teams", "icu", "colour"], "red"), "teams.icu.colour"),
        (_broken(["routes", "0", "team"], "ghost"), "routes[0].team"),
        (_broken(["fallback", "team"], "ghost"), "fallback.team"),
        (_broken(["policies", "standard", "critical_minutes"], 60), "policies.standard"),
        (
            _broken(["teams", "icu", "tiers"], [{"members": ["nobody"], "start": "2024-01-01"}]),
            "teams.icu.tiers[0].members",
        ),
    ],
)
def test_invalid_config_names_the_key(doc: dict[str, Any], key: str) -> None:
    with pytest.raises(RoutingError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_routing(doc, UTC_ZONE, ["console"])


def test_unknown_channel_is_refused() -> None:
    with pytest.raises(RoutingError, match="console"):
        load_routing(shipped(), UTC_ZONE, ["pager"])
