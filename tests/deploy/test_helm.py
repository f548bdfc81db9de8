"""deploy/helm/labsentinel: YAML of the plain files; `helm lint` and `helm template` through
Helm's Go SDK (PyPI helm-python-sdk); rendered manifests against the Kubernetes schemas
(PyPI kubernetes-validate, the kubeconform role); what the Deployment runs and sets."""

from __future__ import annotations

import functools
import shlex

import pytest

from tests.deploy.helpers import (
    CHART,
    ROOT,
    check_cli,
    check_settings_env,
    module,
    sample_value,
    yaml_module,
)

pytestmark = pytest.mark.slow  # runs the deploy validators (docker, helm, promtool, ...)

RELEASE, NAMESPACE = "labsentinel", "clinical"


def helm():
    return module("helm_python")


def test_plain_files_are_yaml():
    yaml = yaml_module()
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "labsentinel"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    yaml.safe_load((CHART / "ci" / "test-values.yaml").read_text())


def test_chart_config_is_valid_settings():
    """files/labsentinel.toml (the chart's default) loads and passes check-config's checks."""
    from service.bootstrap import build_clinical, build_delivery, channel_settings
    from service.runtime.settings import load_settings

    settings = load_settings(CHART / "files" / "labsentinel.toml")
    build_clinical(settings)
    build_delivery(settings, channel_settings(settings, None))
    assert settings.api.host == "0.0.0.0"


def test_values_pin_uid_of_the_image():
    yaml = yaml_module()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    uid = values["podSecurityContext"]["runAsUser"]
    assert f"USER {uid}:{values['podSecurityContext']['runAsGroup']}" in dockerfile


def _test_values() -> dict:
    yaml = yaml_module()
    return yaml.safe_load((CHART / "ci" / "test-values.yaml").read_text())


@functools.cache
def _render() -> dict[str, dict]:
    yaml = yaml_module()
    with helm().Chart.load(str(CHART)) as chart:
        files = chart.render(_test_values(), name=RELEASE, namespace=NAMESPACE, is_install=True)
    manifests = {}
    for path, text in files.items():
        if not path.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                manifests[doc["kind"]] = doc
    return manifests


def test_helm_lint():
    for values in (None, _test_values()):
        report = helm().lint(str(CHART), values, strict=True, namespace=NAMESPACE)
        errors = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not errors, errors


def test_render_refuses_missing_secrets():
    with helm().Chart.load(str(CHART)) as chart, pytest.raises(Exception, match="databaseUrl"):
        chart.render({}, name=RELEASE, namespace=NAMESPACE, is_install=True)


def test_renders_every_kind():
    kinds = set(_render())
    assert {
        "Deployment",
        "ConfigMap",
        "Secret",
        "Service",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "ServiceAccount",
    } <= kinds


def test_deployment_probes_security_and_commands():
    deployment = _render()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert check_cli(container["args"]) is None and container["args"][0] == "run"
    (init,) = pod["initContainers"]
    assert init["args"][:2] == ["db", "upgrade"] and check_cli(init["args"]) is None
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    config_path = container["args"][container["args"].index("--config") + 1]
    assert config_path.rsplit("/", 1)[0] in mounts
    assert "/tmp" in mounts
    config_map = _render()["ConfigMap"]
    assert config_path.rsplit("/", 1)[1] in config_map["data"]


def test_environment_names_real_settings():
    deployment = _render()["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    secret = _render()["Secret"]
    env.update(secret["stringData"])
    assert {ref["secretRef"]["name"] for ref in container["envFrom"]} == {
        secret["metadata"]["name"]
    }
    env = {k: v or sample_value(k) for k, v in env.items()}
    check_settings_env(env)


def test_service_monitor_matches_service_and_rules():
    manifests = _render()
    monitor, service = manifests["ServiceMonitor"], manifests["Service"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    # job="labsentinel" is what deploy/prometheus/rules.yml selects.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "labsentinel"


def test_pdb_selects_the_pods():
    manifests = _render()
    pdb_selector = manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert pdb_selector.items() <= pod_labels.items()


def test_kubernetes_schemas():
    validate = module("kubernetes_validate")
    for kind, manifest in _render().items():
        if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema in the Kubernetes API
        try:
            validate.validate(manifest, "1.30.0", strict=True)
        except validate.ValidationError as exc:
            pytest.fail(f"{kind}: {exc}")


def test_notes_commands():
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "/readyz" in notes
    for line in notes.splitlines():
        assert (
            not line.strip().startswith("labsentinel ")
            or check_cli(shlex.split(line.strip())[1:]) is None
        )


def _render_with(**values: object) -> dict[str, dict]:
    """The chart rendered with the CI values plus ``values`` (top-level keys replaced)."""
    yaml = yaml_module()
    merged = {**_test_values(), **values}
    with helm().Chart.load(str(CHART)) as chart:
        files = chart.render(merged, name=RELEASE, namespace=NAMESPACE, is_install=True)
    return {
        doc["kind"]: doc
        for path, text in files.items()
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if isinstance(doc, dict) and "kind" in doc
    }


def test_prometheus_rule_is_the_rules_file():
    """One source of truth: the chart's copy is byte-identical to deploy/prometheus/rules.yml
    (promtool-tested there), and the PrometheusRule carries exactly its groups."""
    yaml = yaml_module()
    source = ROOT / "deploy" / "prometheus" / "rules.yml"
    copy = CHART / "files" / "prometheus-rules.yml"
    assert copy.read_bytes() == source.read_bytes(), (
        "deploy/helm/labsentinel/files/prometheus-rules.yml differs from "
        "deploy/prometheus/rules.yml: copy the rules file into the chart"
    )
    rule = _render()["PrometheusRule"]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == yaml.safe_load(source.read_text())["groups"]
    assert (
        rule["metadata"]["labels"]["release"]
        == _test_values()["prometheusRule"]["labels"]["release"]
    )
    # Prometheus' own templates pass through Helm untouched.
    annotations = [r["annotations"]["summary"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert any("{{ $labels.instance }}" in a for a in annotations)
    assert "PrometheusRule" not in _render_with(prometheusRule={"enabled": False})


def test_ingress_routes_the_api_port_with_tls():
    manifests = _render()
    ingress, service = manifests["Ingress"], manifests["Service"]
    values = _test_values()["ingress"]
    assert ingress["spec"]["ingressClassName"] == values["className"]
    assert ingress["spec"]["tls"] == values["tls"]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == values["hosts"][0]["host"]
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    for path in rule["http"]["paths"]:
        backend = path["backend"]["service"]
        assert backend["name"] == service["metadata"]["name"]
        assert backend["port"]["name"] == "http" and "http" in service_ports
    assert "Ingress" not in _render_with(ingress={"enabled": False})
    # No TLS: refused, since ack links carry tokens; allowed when a load balancer terminates it.
    plain = {**values, "tls": []}
    with pytest.raises(Exception, match=r"ingress\.tls"):
        _render_with(ingress=plain)
    assert "Ingress" in _render_with(ingress={**plain, "tlsTerminatedUpstream": True})


def test_metrics_on_their_own_port():
    """The daemon is told the metrics port, the pod and Service expose it, the ServiceMonitor
    scrapes it, and neither the Ingress nor the API's port carries it."""
    manifests = _render()
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    port = yaml_module().safe_load((CHART / "values.yaml").read_text())["metrics"]["port"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == port and ports["http"] != port
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LABSENTINEL_METRICS_PORT"] == str(port)
    assert env["LABSENTINEL_METRICS_HOST"] == "0.0.0.0"
    service_ports = {p["name"]: p for p in manifests["Service"]["spec"]["ports"]}
    assert service_ports["metrics"]["port"] == port
    assert service_ports["metrics"]["targetPort"] == "metrics"
    (endpoint,) = manifests["ServiceMonitor"]["spec"]["endpoints"]
    assert endpoint["port"] == "metrics"
    ingress_ports = {
        p["backend"]["service"]["port"].get("name")
        for rule in manifests["Ingress"]["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert "metrics" not in ingress_ports
    # The settings the chart passes are real ones, and the daemon then serves /metrics only
    # there (service.api.metrics_server; tests/api/test_metrics_port.py serves it for real).
    check_settings_env({k: v for k, v in env.items() if v is not None})


def test_readiness_probe_allows_standby_replicas():
    """More replicas than partitions: /readyz counts group membership, not partitions, so
    a standby becomes ready (tests/api/test_readiness_standby.py runs it on a broker)."""
    from service.api.context import Readiness

    deployment = _render()["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}

    class Standby:
        connected, joined, assigned = True, True, 0

    class Running:
        running = True

    assert all(Readiness(consumer=Standby(), dispatcher=Running()).checks().values())


def test_network_policy_admits_only_the_ingress_and_prometheus():
    """Web port from the ingress controller's namespace, metrics port from Prometheus', and
    out only to DNS, PostgreSQL, Kafka and the paging gateways."""
    manifests = _render()
    policy = manifests["NetworkPolicy"]["spec"]
    pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (container,) = manifests["Deployment"]["spec"]["template"]["spec"]["containers"]
    named = {p["name"] for p in container["ports"]}
    sources = {}
    for rule in policy["ingress"]:
        (port,) = rule["ports"]
        assert port["port"] in named  # a named port the pod really has
        sources[port["port"]] = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for peer in rule["from"]
        }
    assert sources == {"http": {"ingress-nginx"}, "metrics": {"monitoring"}}
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (9092, "TCP"), (443, "TCP")} <= egress_ports
    dns = next(rule for rule in policy["egress"] if rule["ports"][0]["port"] == 53)
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "kube-system"
    }

    values = yaml_module().safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
    database = {"ports": [5433], "to": [{"ipBlock": {"cidr": "10.20.0.15/32"}}]}
    narrowed = {
        **values,
        "ingress": {"fromNamespaces": ["ingress"], "fromPodLabels": {"app": "nginx"}},
        "egress": {**values["egress"], "database": database},
    }
    policy = _render_with(networkPolicy=narrowed)["NetworkPolicy"]["spec"]
    web = next(rule for rule in policy["ingress"] if rule["ports"][0]["port"] == "http")
    assert web["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress"}},
            "podSelector": {"matchLabels": {"app": "nginx"}},
        }
    ]
    to_database = next(rule for rule in policy["egress"] if rule["ports"][0]["port"] == 5433)
    assert to_database["to"] == database["to"]
    assert "NetworkPolicy" not in _render_with(networkPolicy={**values, "enabled": False})
