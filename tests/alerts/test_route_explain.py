"""`routes test`'s explanation: the same answer a page gets, and the reasons behind it."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from alerts.route_explain import explain, mismatched_keys
from alerts.routing import Match, Subject, load_routing

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "routing.toml"
NY = ZoneInfo("America/New_York")
AT = datetime(2024, 1, 9, 14, 0, tzinfo=UTC)  # a Tuesday: pharmacist-b's week (shift 1)


def doc() -> dict[str, Any]:
    return tomllib.loads(SHIPPED.read_text())


CONFIG = load_routing(doc(), NY, ["console"])

SUBJECTS = [
    Subject("r", "high", "ICU/582/B", "GH", "MED"),  # location route before service
    Subject("r", "critical", "micu/1/A", "GH", ""),  # case-insensitive pattern
    Subject("r", "high", "6S/101/A", "GH", "NEP"),  # second route
    Subject("r", "critical", "ONC/3/A", "GH", "HEM"),  # second service of a route
    Subject("r", "high", "ER/1/A", "GH", "EMR"),  # nothing matches: fallback team
    Subject("r", "warning", "4W/1/A", "GH", "MED"),  # does not page
    Subject("r", "info", "", "", ""),  # nothing at all
]


@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: f"{s.severity}-{s.location}")
@pytest.mark.parametrize("tier", [1, 2, 5])
def test_the_explanation_agrees_with_what_a_page_gets(subject: Subject, tier: int) -> None:
    result = explain(CONFIG, subject, AT, tier=tier)
    target = CONFIG.target(CONFIG.route(subject), subject.severity, AT, tier=tier)
    assert result.team == CONFIG.route(subject)
    assert result.deliveries == target.deliveries
    assert result.pages == target.pages
    if result.on_call is not None:
        assert (result.on_call.person,) == target.recipients


def test_each_route_says_which_keys_failed_and_the_rest_are_not_reached() -> None:
    result = explain(CONFIG, Subject("r", "high", "6S/1/A", "GH", "NEP"), AT)
    # the icu route fails on the location only; nephrology matches; later ones not tested
    assert [(c.name, c.matched, c.mismatched) for c in result.checks] == [
        ("icu", False, ("locations",)),
        ("nephrology", True, ()),
        ("oncology", False, ()),
        ("medicine", False, ()),
    ]
    assert result.route == "nephrology" and not result.fallbacks


def test_no_match_says_the_fallback_team_was_taken() -> None:
    result = explain(CONFIG, Subject("r", "high", "ER/1/A", "GH", "EMR"), AT)
    assert result.team == "pharmacy" and result.route == ""
    assert "no route matched" in result.fallbacks[0]
    assert all(c.mismatched for c in result.checks)  # every route tested and failed


@pytest.mark.parametrize(
    ("match", "subject", "failed"),
    [
        (Match(rules=("a",)), Subject("b", "high"), ("rules",)),  # rule differs
        (Match(severities=("critical",)), Subject("r", "high"), ("severities",)),
        (Match(locations=("ICU*",)), Subject("r", "high", "ICU2/1/A"), ()),  # point of care
        (Match(locations=("ICU",)), Subject("r", "high", "ICU2/1/A"), ("locations",)),
        (Match(facilities=("GH",), services=("MED",)), Subject("r", "high", "", "X", "S"),
         ("facilities", "services")),  # both named, in file order
        (Match(), Subject("r", "high"), ()),  # an empty match matches anything
    ],
)  # fmt: skip
def test_mismatched_keys(match: Match, subject: Subject, failed: tuple[str, ...]) -> None:
    assert mismatched_keys(match, subject) == failed
    assert match.matches(subject) == (not failed)


def test_the_rotation_is_the_reason_with_its_shift_and_next_handoff() -> None:
    result = explain(CONFIG, Subject("r", "critical", "ER/1/A"), AT)
    holder = result.on_call
    assert holder is not None and holder.person == "pharmacist-b"
    assert holder.because == "rotation" and "shift 1 " in holder.detail
    assert holder.detail.count("member 2 of 2")
    # the next Monday 08:00 New York (EST, UTC-5)
    assert holder.until == datetime(2024, 1, 15, 13, 0, tzinfo=UTC)
    assert holder.contacts == (("console", "pager-4902"),)


def test_a_routing_file_override_is_the_reason_and_ends_the_shift_early() -> None:
    data = doc()
    data["teams"]["pharmacy"]["overrides"] = [
        {"tier": 1, "person": "pharmacy-lead", "start": "2024-01-09T12:00",
         "end": "2024-01-10T12:00", "reason": "cover"},
    ]  # fmt: skip
    config = load_routing(data, ZoneInfo("UTC"), ["console"])
    inside = explain(config, Subject("r", "high"), AT)
    assert inside.on_call is not None and inside.on_call.person == "pharmacy-lead"
    assert inside.on_call.because == "override"
    assert "teams.pharmacy.overrides[0]" in inside.on_call.detail
    assert "(cover)" in inside.on_call.detail
    assert inside.on_call.until == datetime(2024, 1, 10, 12, 0, tzinfo=UTC)
    before = explain(config, Subject("r", "high"), AT - timedelta(hours=6))
    # the rotation's shift ends where the override begins
    assert before.on_call is not None and before.on_call.because == "rotation"
    assert before.on_call.until == datetime(2024, 1, 9, 12, 0, tzinfo=UTC)


def test_escalation_lists_the_next_tiers_with_the_policy_wait() -> None:
    critical = explain(CONFIG, Subject("r", "critical", "ICU/1/A"), AT)
    assert critical.escalation == ((2, "icu-attending", 10.0),)  # critical_minutes
    high = explain(CONFIG, Subject("r", "high", "ICU/1/A"), AT)
    assert high.escalation == ((2, "icu-attending", 30.0),)  # high_minutes
    last = explain(CONFIG, Subject("r", "high", "ICU/1/A"), AT, tier=2)
    assert last.escalation == () and last.tier == 2


def test_a_tier_beyond_the_last_is_a_fallback_to_the_last() -> None:
    result = explain(CONFIG, Subject("r", "high", "ICU/1/A"), AT, tier=3)
    assert result.tier == 2 and "tier 3 does not exist" in result.fallbacks[0]


def test_a_warning_does_not_page_and_says_where_it_goes() -> None:
    result = explain(CONFIG, Subject("r", "warning", "ICU/1/A"), AT)
    assert not result.pages and result.on_call is None and result.deliveries == ()
    assert "worklist only" in result.notes[0]


def test_the_explanation_as_json_names_everything() -> None:
    data = explain(CONFIG, Subject("r", "high", "ICU/1/A"), AT).as_dict()
    assert data["team"] == "icu" and data["on_call"]["person"] == "icu-resident"
    assert data["routes"][0]["matched"] is True
    assert data["escalation"] == [{"tier": 2, "person": "icu-attending", "after_minutes": 30.0}]


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        explain(CONFIG, Subject("r", "high"), datetime(2024, 1, 9, 14, 0))
