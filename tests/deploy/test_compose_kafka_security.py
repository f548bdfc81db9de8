"""Compose's Kafka behind SASL_SSL with SCRAM-SHA-512, run for real.

The broker's settings are compose.yaml's ``KAFKA_*`` environment turned into
server.properties by the apache/kafka image's own rule, with the TLS key and certificate that
compose-secrets.sh writes; the user is created as compose's kafka-setup step does (through the
loopback listener, from a properties file); the daemon connects with the environment compose
gives it. Kafka 4.1.1 from its jars (``service.tools.kafka``), no Docker.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from service.ingest.consumer import kafka_options
from service.ingest.topics import ensure_topics
from service.runtime.settings import load_settings
from service.tools.broker import free_port
from service.tools.kafka import resolve_jars
from tests.deploy.helpers import DEPLOY, parse_env_file, run, yaml_module

pytestmark = pytest.mark.slow

LOG4J = "rootLogger.level=WARN\nrootLogger.appenderRef.o.ref=O\nappender.o.type=Console\n"
LOG4J += "appender.o.name=O\nappender.o.layout.type=PatternLayout\nappender.o.layout.pattern=%m%n\n"


def image_property(variable: str) -> str:
    """apache/kafka's mapping of KAFKA_* variables: '___' is '-', '__' is '_', '_' is '.'."""
    name = variable.removeprefix("KAFKA_").lower()
    return (
        name.replace("___", "\0")
        .replace("__", "\1")
        .replace("_", ".")
        .replace("\0", "-")
        .replace("\1", "_")
    )


def test_image_property_mapping() -> None:
    assert image_property("KAFKA_LOG_DIRS") == "log.dirs"
    assert (
        image_property("KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG")
        == "listener.name.internal.scram-sha-512.sasl.jaas.config"
    )


def compose() -> dict:  # type: ignore[type-arg]
    return yaml_module().safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_speaks_only_sasl_ssl_off_the_loopback() -> None:
    services = compose()["services"]
    env = services["kafka"]["environment"]
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = dict(
        item.split("://") for item in env["KAFKA_LISTENERS"].split(",")
    )  # name -> host:port
    for name, protocol in protocols.items():
        if protocol == "PLAINTEXT":  # only ever on the container's own loopback
            assert listeners[name].startswith("127.0.0.1:"), name
    assert protocols["INTERNAL"] == protocols["EXTERNAL"] == "SASL_SSL"
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    daemon = services["labsentinel"]["environment"]
    assert daemon["LABSENTINEL_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert daemon["LABSENTINEL_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    setup = services["kafka-topics"]
    assert setup["network_mode"] == "service:kafka"
    assert "--add-config" in setup["command"][0] and "9091" in setup["command"][0]


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("secrets", "*.env", ".env"))
    result = run(["sh", str(copy / "compose-secrets.sh")])
    assert result.returncode == 0, result.stderr
    return copy


class ComposeKafka:
    """One broker with compose's settings, on free loopback ports."""

    def __init__(self, deploy: Path, workdir: Path) -> None:
        self.libs = resolve_jars()
        self.workdir = workdir
        self.ports = {port: free_port() for port in ("9091", "9092", "9093", "9094")}
        env = {k: str(v) for k, v in compose()["services"]["kafka"]["environment"].items()}
        env.update(parse_env_file(deploy / "kafka.env"))
        env["KAFKA_LOG_DIRS"] = str(workdir / "data")
        lines = []
        for variable, value in env.items():
            value = value.replace("${KAFKA_EXTERNAL_HOST:-localhost}", "localhost")
            value = value.replace("//kafka:", "//localhost:")  # the containers' name for it
            for port, free in self.ports.items():
                value = value.replace(f":{port}", f":{free}")
            lines.append(f"{image_property(variable)}={value}\n")
        self.config = workdir / "server.properties"
        self.config.write_text("".join(lines))
        (workdir / "log4j2.properties").write_text(LOG4J)
        self.process: subprocess.Popen[bytes] | None = None

    def java(self, *args: str) -> list[str]:
        log4j = f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}"
        return ["java", "-Xmx384m", "-XX:+UseSerialGC", log4j, "-cp", f"{self.libs}/*", *args]

    def start(self) -> None:
        cluster = uuid.uuid4().bytes
        import base64

        cluster_id = base64.urlsafe_b64encode(cluster).decode().rstrip("=")
        formatted = subprocess.run(
            self.java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                      f"--config={self.config}"),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert formatted.returncode == 0, formatted.stdout + formatted.stderr
        log = (self.workdir / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.java("kafka.Kafka", str(self.config)), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, (self.workdir / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "broker did not start"
            try:
                socket.create_connection(("127.0.0.1", self.ports["9092"]), 0.5).close()
                socket.create_connection(("127.0.0.1", self.ports["9091"]), 0.5).close()
                return
            except OSError:
                time.sleep(0.2)

    def add_scram_user(self, name: str, password: str) -> None:
        """What kafka-setup does: kafka-configs --add-config on the loopback listener."""
        done = subprocess.run(
            self.java("kafka.admin.ConfigCommand", "--bootstrap-server",
                      f"127.0.0.1:{self.ports['9091']}", "--alter", "--entity-type", "users",
                      "--entity-name", name, "--add-config",
                      f"SCRAM-SHA-512=[iterations=8192,password={password}]"),
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def compose_kafka(deploy_copy: Path, tmp_path: Path) -> Iterator[ComposeKafka]:
    (tmp_path / "kafka").mkdir()
    kafka = ComposeKafka(deploy_copy, tmp_path / "kafka")
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


def daemon_settings(deploy: Path, kafka: ComposeKafka, **override: str):  # type: ignore[no-untyped-def]
    """The daemon's Kafka settings as compose passes them (its environment and env file)."""
    env = {
        k: str(v)
        for k, v in compose()["services"]["labsentinel"]["environment"].items()
        if k.startswith("LABSENTINEL_KAFKA_")
    }
    env.update(
        {k: v for k, v in parse_env_file(deploy / "labsentinel.env").items() if "KAFKA" in k}
    )
    env["LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS"] = f"localhost:{kafka.ports['9092']}"
    env["LABSENTINEL_KAFKA_SSL_CAFILE"] = str(deploy / "secrets" / "kafka-ca.pem")
    env.update(override)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return load_settings().kafka
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


async def round_trip(options: dict, topic: str) -> bytes:  # type: ignore[type-arg]
    producer = AIOKafkaProducer(**options, request_timeout_ms=15_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"MSH|^~\\&|compose")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, **options, group_id=f"g-{uuid.uuid4().hex[:8]}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), 60)
    finally:
        await consumer.stop()
    assert record.value is not None
    return record.value


def test_the_daemon_reaches_compose_kafka_only_with_tls_and_its_password(
    deploy_copy: Path, compose_kafka: ComposeKafka
) -> None:
    password = parse_env_file(deploy_copy / "kafka-scram.env")["SCRAM_LABSENTINEL_PASSWORD"]
    compose_kafka.add_scram_user("labsentinel", password)
    loopback = {"bootstrap_servers": f"127.0.0.1:{compose_kafka.ports['9091']}"}
    asyncio.run(ensure_topics(loopback, ["hl7.oru"]))

    settings = daemon_settings(deploy_copy, compose_kafka)
    assert settings.security_protocol == "SASL_SSL" and settings.sasl_password is not None
    assert asyncio.run(round_trip(kafka_options(settings), "hl7.oru")) == b"MSH|^~\\&|compose"

    # A wrong password, and a client without TLS or SASL, get nothing.
    wrong = daemon_settings(deploy_copy, compose_kafka, LABSENTINEL_KAFKA_SASL_PASSWORD="x" * 43)
    with pytest.raises(KafkaError):
        asyncio.run(round_trip(kafka_options(wrong), "hl7.oru"))
    plain = {"bootstrap_servers": f"127.0.0.1:{compose_kafka.ports['9092']}"}
    with pytest.raises((KafkaError, asyncio.TimeoutError)):
        asyncio.run(asyncio.wait_for(round_trip(plain, "hl7.oru"), 30))
