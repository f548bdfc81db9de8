"""How the command line words what it did: `alerts list` steps, the soak reproduce line."""

from __future__ import annotations

from service.cli.paging import _escalation_step


def test_a_paged_alert_shows_its_policy_and_tier() -> None:
    assert _escalation_step({"escalation": "default", "tier": 2}) == "default/tier 2"


def test_a_worklist_alert_without_a_policy_shows_only_its_tier() -> None:
    assert _escalation_step({"escalation": "", "tier": 1}) == "tier 1"
    assert _escalation_step({"escalation": None, "tier": 1}) == "tier 1"


def test_the_soak_reproduce_line_names_the_broker_it_ran_on() -> None:
    from service.cli.main import build_parser
    from service.cli.reliability import _command

    tansu = build_parser().parse_args(["soak", "--only", "broker"])
    kafka = build_parser().parse_args(["soak", "--broker", "kafka", "--only", "broker"])
    assert "--broker tansu" not in _command(tansu) and "--broker kafka" not in _command(tansu)
    assert "--broker kafka --only broker" in _command(kafka)
