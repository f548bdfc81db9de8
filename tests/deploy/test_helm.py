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
