"""deploy/grafana: the dashboard JSON loads, its queries use only metrics the service exports,
the datasource uid is the provisioned one, and the provisioning files fit compose."""

from __future__ import annotations

import json

import pytest

from tests.deploy.helpers import DEPLOY, exported_metric_names, metric_names_in, yaml_module

pytestmark = pytest.mark.slow  # runs the deploy validators (docker, helm, promtool, ...)

GRAFANA = DEPLOY / "grafana"


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads((GRAFANA / "labsentinel.json").read_text())


def panels(dashboard: dict) -> list[dict]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def provisioned_uid() -> str:
    yaml = yaml_module()
    (source,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "labsentinel.yaml").read_text()
    )["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    return source["uid"]


def test_loads_with_unique_panel_ids(dashboard):
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_queries_use_exported_metrics(dashboard):
    exported = exported_metric_names()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            unknown = metric_names_in(target["expr"]) - exported
            assert not unknown, f"panel {panel['title']!r}: unknown metrics {unknown}"


def test_covers_the_operational_metrics(dashboard):
    used = set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            used |= metric_names_in(target["expr"])
    for name in (
        "labsentinel_messages_consumed_total",
        "labsentinel_dead_letters_total",
        "labsentinel_processing_seconds_bucket",
        "labsentinel_detection_seconds_bucket",
        "labsentinel_consumer_lag",
        "labsentinel_outbox_pending",
        "labsentinel_outbox_oldest_age_seconds",
        "labsentinel_deliveries_total",
        "labsentinel_alerts_total",
    ):
        assert name in used, name


def test_datasource_uid_is_the_provisioned_one(dashboard):
    uid = provisioned_uid()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["current"]["value"] == uid
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        refs = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
        for ref in refs:
            assert ref["type"] == "prometheus" and ref["uid"] in {"${datasource}", uid}, panel[
                "title"
            ]


def test_dashboard_provider_path_matches_compose_mount():
    yaml = yaml_module()
    (provider,) = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "labsentinel.yaml").read_text()
    )["providers"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    target = next(m.split(":")[1] for m in mounts if m.startswith("./grafana/labsentinel.json"))
    assert target.rsplit("/", 1)[0] == provider["options"]["path"]
