"""deploy/compose.yaml: loads, services/ports/volumes/secrets are consistent, LabSentinel's
environment names real settings, and (where installed) docker-compose validates it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    DEPLOY,
    ROOT,
    check_cli,
    check_settings_env,
    parse_env_file,
    run,
    tool,
    yaml_module,
)

pytestmark = pytest.mark.slow  # runs the deploy validators (docker, helm, promtool, ...)

COMPOSE = DEPLOY / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = yaml_module()
    return yaml.safe_load(COMPOSE.read_text())


def test_services(compose):
    services = compose["services"]
    assert {
        "postgres",
        "kafka",
        "labsentinel",
        "labsentinel-migrate",
        "prometheus",
        "grafana",
    } <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["labsentinel"]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (
        COMPOSE.parent / services["labsentinel"]["build"]["context"] / "deploy" / "Dockerfile"
    ).is_file()


def test_every_image_is_pinned(compose):
    for name, service in compose["services"].items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image!r}"


def test_migrations_run_before_the_daemon(compose):
    services = compose["services"]
    migrate, daemon = services["labsentinel-migrate"], services["labsentinel"]
    assert check_cli(migrate["command"]) is None and migrate["command"][:2] == ["db", "upgrade"]
    assert check_cli(daemon["command"]) is None and daemon["command"][0] == "run"
    assert (
        daemon["depends_on"]["labsentinel-migrate"]["condition"] == "service_completed_successfully"
    )
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_depends_on_names_real_services(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_published_ports_are_unique_and_on_loopback(compose):
    seen = set()
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip, host_port, _ = str(port).split(":")
            assert host_ip == "127.0.0.1", f"{name}: publish on 127.0.0.1 ({port})"
            assert host_port not in seen
            seen.add(host_port)
    assert "8080" in seen


def test_named_volumes_and_secrets_are_declared(compose):
    declared_volumes = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} missing"
            else:
                assert source in declared_volumes, f"{name}: volume {source} not declared"
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], f"{name}: secret {secret} not declared"


def test_no_secret_inline(compose):
    for name, service in compose["services"].items():
        env = service.get("environment", {})
        for key in env:
            if any(word in key for word in ("PASSWORD", "SECRET", "TOKEN", "DATABASE_URL", "SALT")):
                assert key.endswith("_FILE"), f"{name}: {key} inline; use a secret or the env file"
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./secrets/")
    gitignore = (DEPLOY / ".gitignore").read_text()
    assert "/secrets/*" in gitignore and "/labsentinel.env" in gitignore


def test_labsentinel_env_names_are_real_settings(compose):
    env = {k: str(v) for k, v in compose["services"]["labsentinel"]["environment"].items()}
    env.update(parse_env_file(DEPLOY / "labsentinel.env.example"))
    assert compose["services"]["labsentinel"]["env_file"] == ["./labsentinel.env"]
    check_settings_env(env)


def test_prometheus_and_grafana_mounts_exist(compose):
    for name in ("prometheus", "grafana"):
        for volume in compose["services"][name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), source


def test_secrets_script_fills_the_env_file(tmp_path: Path):
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("secrets", "labsentinel.env"))
    result = run(["sh", str(copy / "compose-secrets.sh")])
    assert result.returncode == 0, result.stderr
    env = parse_env_file(copy / "labsentinel.env")
    password = (copy / "secrets" / "postgres_password").read_text().strip()
    assert f"labsentinel:{password}@postgres:5432" in env["LABSENTINEL_DATABASE_URL"]
    assert not [k for k, v in env.items() if "CHANGE-ME" in v], "placeholders left"
    check_settings_env(env)
    before = (copy / "labsentinel.env").read_text()
    run(["sh", str(copy / "compose-secrets.sh")])
    assert (copy / "labsentinel.env").read_text() == before, "re-running must not rotate secrets"


def test_docker_compose_config(tmp_path: Path):
    """The Compose schema check of docker-compose (Debian's 1.29 package, which predates the
    top-level `name:` key, so the copy checked here drops that one line)."""
    docker_compose = tool("docker-compose")
    root = tmp_path / "repo"
    shutil.copytree(
        DEPLOY, root / "deploy", ignore=shutil.ignore_patterns("labsentinel.env", "secrets")
    )
    shutil.copytree(ROOT / "configs", root / "configs")
    assert run(["sh", str(root / "deploy" / "compose-secrets.sh")]).returncode == 0
    compose_file = root / "deploy" / "compose.yaml"
    lines = compose_file.read_text().splitlines(keepends=True)
    compose_file.write_text("".join(line for line in lines if not line.startswith("name:")))
    result = run([docker_compose, "-f", str(compose_file), "config", "-q"], cwd=root / "deploy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_yamllint_plain_yaml():
    """The non-templated YAML of deploy/ (templates are helm lint's job)."""
    from tests.deploy.helpers import run as run_tool

    yamllint = tool("yamllint")
    result = run_tool([yamllint, "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_apache_kafka_the_tests_prove(compose):
    """The suite proves the daemon on Apache Kafka ``KAFKA_VERSION`` (service.tools.kafka) in
    KRaft combined mode; compose must run that version, in that mode."""
    from service.tools.kafka import KAFKA_VERSION

    images = [
        service["image"]
        for service in compose["services"].values()
        if service.get("image", "").startswith("apache/kafka:")
    ]
    assert images and all(
        image.split()[0] == f"apache/kafka:{KAFKA_VERSION}" for image in images
    ), images
    kafka = compose["services"]["kafka"]["environment"]
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "CONTROLLER" in kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]
