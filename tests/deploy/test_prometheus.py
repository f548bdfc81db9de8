"""deploy/prometheus: `promtool check rules/config`, `promtool test rules` (each alert fires
on synthetic series), and every metric a rule uses is one the service exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    DEPLOY,
    exported_metric_names,
    metric_names_in,
    run,
    tool,
    yaml_module,
)

pytestmark = pytest.mark.slow  # runs the deploy validators (docker, helm, promtool, ...)

PROM = DEPLOY / "prometheus"
REQUIRED_ALERTS = {
    "LabSentinelInstanceDown",
    "LabSentinelConsumerLagHigh",
    "LabSentinelDeadLetterRateHigh",
    "LabSentinelPageDeliveryFailed",
    "LabSentinelOutboxStale",
    "LabSentinelConsumerPaused",
    "LabSentinelNoMessagesDaytime",
}


@pytest.fixture(scope="module")
def rules() -> list[dict]:
    yaml = yaml_module()
    groups = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_required_alerts_with_for_severity_and_annotations(rules):
    names = {rule["alert"] for rule in rules}
    assert names >= REQUIRED_ALERTS
    readme = (DEPLOY / "README.md").read_text().lower()
    for rule in rules:
        assert "for" in rule, rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        annotations = rule["annotations"]
        assert annotations["summary"] and "Runbook" in annotations["description"]
        anchor = annotations["runbook"].split("#", 1)[1]
        assert f"### {anchor}" in readme.replace("### `", "### ").replace("`", ""), anchor


def test_rule_metrics_are_exported(rules):
    exported = exported_metric_names()
    for rule in rules:
        unknown = metric_names_in(rule["expr"]) - exported
        assert not unknown, f"{rule['alert']} uses metrics the service does not export: {unknown}"


def test_every_alert_has_a_unit_test(rules):
    yaml = yaml_module()
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert {rule["alert"] for rule in rules} <= fired


def test_promtool_check_rules():
    promtool = tool("promtool")
    result = run([promtool, "check", "rules", str(PROM / "rules.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules():
    promtool = tool("promtool")
    result = run([promtool, "test", "rules", "rules_test.yml"], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config(tmp_path: Path):
    """prometheus.yml as compose mounts it: rules under /etc/prometheus/rules/."""
    promtool = tool("promtool")
    yaml = yaml_module()
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["labsentinel"]["static_configs"][0]["targets"] == ["labsentinel:8080"]
    (tmp_path / "rules").mkdir()
    shutil.copy(PROM / "rules.yml", tmp_path / "rules" / "labsentinel.yml")
    config["rule_files"] = [str(tmp_path / "rules" / "*.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run([promtool, "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr
