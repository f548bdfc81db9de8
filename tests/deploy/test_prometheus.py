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
    "LabSentinelSchedulerJobErrors",
    "LabSentinelEscalationStale",
    "LabSentinelSchedulerJobStale",
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
    # The metrics port compose gives LabSentinel (LABSENTINEL_METRICS_PORT), not the API's.
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    metrics_port = compose["x-labsentinel"]["environment"]["LABSENTINEL_METRICS_PORT"]
    assert jobs["labsentinel"]["static_configs"][0]["targets"] == [f"labsentinel:{metrics_port}"]
    (tmp_path / "rules").mkdir()
    shutil.copy(PROM / "rules.yml", tmp_path / "rules" / "labsentinel.yml")
    config["rule_files"] = [str(tmp_path / "rules" / "*.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run([promtool, "check", "config", str(tmp_path / "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_metric_label_collides_with_target_labels():
    """A metric label named like a target label (`job`, `instance`) is renamed
    `exported_job` at scrape and silently breaks every rule and panel that uses it."""
    from service.runtime import metrics

    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            clash = {"job", "instance"} & set(sample.labels)
            assert not clash, f"{sample.name} has label(s) {clash}"


def test_every_scheduler_task_can_alert(rules):
    """Each periodic task's errors and staleness are covered by a rule that keeps `task`."""
    from service.runtime import metrics

    exprs = {rule["alert"]: rule["expr"] for rule in rules}
    assert "by (instance, task)" in exprs["LabSentinelSchedulerJobErrors"]
    stale = exprs["LabSentinelEscalationStale"] + exprs["LabSentinelSchedulerJobStale"]
    assert 'task="escalation"' in stale and 'task!="escalation"' in stale
    for name in (
        "labsentinel_scheduler_job_last_success_timestamp_seconds",
        "labsentinel_scheduler_job_interval_seconds",
    ):
        assert name in stale
    metrics.prime_service()
    for task in metrics.SCHEDULER_TASKS:
        labels = {"task": task, "outcome": "error"}
        assert (
            metrics.REGISTRY.get_sample_value("labsentinel_scheduler_job_runs_total", labels)
            is not None
        ), f"{task}: no series at zero"
