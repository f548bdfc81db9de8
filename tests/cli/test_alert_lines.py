"""How `alerts list` names an alert's escalation step."""

from __future__ import annotations

from service.cli.paging import _escalation_step


def test_a_paged_alert_shows_its_policy_and_tier() -> None:
    assert _escalation_step({"escalation": "default", "tier": 2}) == "default/tier 2"


def test_a_worklist_alert_without_a_policy_shows_only_its_tier() -> None:
    assert _escalation_step({"escalation": "", "tier": 1}) == "tier 1"
    assert _escalation_step({"escalation": None, "tier": 1}) == "tier 1"
