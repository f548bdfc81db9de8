"""Apache Kafka for tests and developers: the broker's own jars, started with ``java`` in KRaft.

Hospitals run Apache Kafka; Tansu (``service.tools.broker``) is the embedded default because it
is one small binary, but the daemon must be proven against the real thing. Nothing here needs
Docker: Maven resolves ``org.apache.kafka:kafka_2.13`` and its dependencies from Maven Central
into a cache folder once (``LABSENTINEL_KAFKA_CACHE``, default ``~/.cache/labsentinel``), and
each node is one JVM running ``kafka.Kafka`` in combined broker+controller mode on free
loopback ports, with its own log directory formatted by Kafka's ``StorageTool``.

One node for the integration suite; three (static controller quorum of all three, topics with
replication factor 3 and ``min.insync.replicas`` 2) for failover. Optional SASL/SCRAM on the
client listener, the credential written at format time (``--add-scram``), as a hospital's
cluster would ask of the daemon. Inter-broker and controller traffic stay PLAINTEXT on loopback.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from service.tools.broker import free_port, wait_or_kill

# The version compose runs (deploy/compose.yaml) and the suite proves; see README "Brokers".
KAFKA_VERSION = "4.1.1"
_LOG4J_VERSION = "2.24.3"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>labsentinel</groupId><artifactId>apache-kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId>
      <version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J = """rootLogger.level=WARN
rootLogger.appenderRef.stdout.ref=STDOUT
appender.stdout.type=Console
appender.stdout.name=STDOUT
appender.stdout.layout.type=PatternLayout
appender.stdout.layout.pattern=[%d] %p %m (%c)%n
"""


def cache_root() -> Path:
    configured = os.environ.get("LABSENTINEL_KAFKA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "labsentinel"


def resolve_jars(version: str = KAFKA_VERSION, cache: Path | None = None) -> Path:
    """The folder holding Kafka ``version``'s broker jars; resolved through Maven on first use."""
    folder = (cache or cache_root()) / f"kafka-{version}"
    libs = folder / "libs"
    done = folder / ".resolved"
    if done.exists():
        return libs
    for tool in ("mvn", "java"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"Apache Kafka needs {tool!r} on PATH (Java 17 and Maven)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pom.xml").write_text(_POM.format(kafka=version, log4j=_LOG4J_VERSION))
    staging = folder / "libs.partial"
    shutil.rmtree(staging, ignore_errors=True)
    result = subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(folder / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"mvn could not resolve kafka_2.13:{version}: {' / '.join(tail)}")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    done.write_text(version + "\n")
    return libs


@dataclass(frozen=True)
class Scram:
    """A SCRAM credential the client listener requires (created when the log dirs are formatted)."""

    username: str
    password: str
    mechanism: str = "SCRAM-SHA-512"


@dataclass
class KafkaNode:
    node_id: int
    port: int
    controller_port: int
    internal_port: int
    directory: Path
    advertised_port: int | None = None
    process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def client_port(self) -> int:
        """The port clients are told to connect to (a proxy's, when one stands in front)."""
        return self.advertised_port or self.port


class ApacheKafka:
    """``brokers`` Apache Kafka nodes on 127.0.0.1; ``start`` blocks until all accept clients."""

    def __init__(
        self,
        brokers: int = 1,
        *,
        scram: Scram | None = None,
        version: str = KAFKA_VERSION,
        workdir: Path | None = None,
        heap: str = "384m",
        quick_start: bool = True,
        auto_create_topics: bool = True,
        advertised_port: int | None = None,
    ) -> None:
        """``advertised_port``: a single node's client address as told to clients, when a proxy
        stands in front of it (the fault suite cuts connections there). ``quick_start``: a JVM
        tuned to start fast and stay small (serial GC, the C1 compiler only), as tests want;
        off, Kafka's own choice (G1, full JIT), as a benchmark wants."""
        if brokers not in (1, 3):
            raise ValueError("1 broker, or 3 for a replicated cluster")
        if advertised_port is not None and brokers != 1:
            raise ValueError("an advertised port can be set only for a single node")
        self.version = version
        self.scram = scram
        self.heap = heap
        self.quick_start = quick_start
        self.auto_create_topics = auto_create_topics
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="labsentinel-kafka-"))
        self.cluster_id = _cluster_id()
        self.nodes = [
            KafkaNode(
                node_id=index + 1,
                port=free_port(),
                controller_port=free_port(),
                internal_port=free_port(),
                directory=self.workdir / f"node{index + 1}",
                advertised_port=advertised_port,
            )
            for index in range(brokers)
        ]
        self.libs: Path | None = None

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{node.advertised_port or node.port}" for node in self.nodes)

    @property
    def replication_factor(self) -> int:
        return len(self.nodes)

    def client_options(self) -> dict[str, str]:
        """aiokafka keyword arguments a client of this cluster needs."""
        options = {"bootstrap_servers": self.bootstrap_servers}
        if self.scram is not None:
            options.update(
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=self.scram.mechanism,
                sasl_plain_username=self.scram.username,
                sasl_plain_password=self.scram.password,
            )
        return options

    def settings_environment(self) -> dict[str, str]:
        """The daemon's ``LABSENTINEL_KAFKA_*`` variables for this cluster."""
        env = {"LABSENTINEL_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        if self.scram is not None:
            env.update(
                LABSENTINEL_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
                LABSENTINEL_KAFKA_SASL_MECHANISM=self.scram.mechanism,
                LABSENTINEL_KAFKA_SASL_USERNAME=self.scram.username,
                LABSENTINEL_KAFKA_SASL_PASSWORD=self.scram.password,
            )
        return env

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout_s: float = 120.0) -> ApacheKafka:
        self.libs = resolve_jars(self.version)
        for node in self.nodes:
            self._format(node)
        for node in self.nodes:
            self._launch(node)
        for node in self.nodes:
            self._wait_listening(node, timeout_s)
        return self

    def stop(self) -> None:
        """All nodes at once: stopped one by one, the last ones would wait for a quorum."""
        for node in self.nodes:
            if node.process is not None and node.running():
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                wait_or_kill(node.process, 10)
            node.process = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    def kill_node(self, node_id: int) -> None:
        """SIGKILL: no controlled shutdown, no leadership handed over (a crash, a pulled plug)."""
        node = self.node(node_id)
        if node.process is not None and node.running():
            node.process.send_signal(signal.SIGKILL)
            node.process.wait()
        node.process = None

    def stop_node(self, node_id: int, timeout_s: float = 60.0) -> None:
        """SIGTERM: Kafka's controlled shutdown (leaders moved first), as a rolling restart does."""
        node = self.node(node_id)
        if node.process is not None and node.running():
            node.process.terminate()
            wait_or_kill(node.process, timeout_s)
        node.process = None

    def start_node(self, node_id: int, timeout_s: float = 120.0) -> None:
        node = self.node(node_id)
        self._launch(node)
        self._wait_listening(node, timeout_s)

    def log_of(self, node_id: int) -> str:
        path = self.node(node_id).directory / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # -- internals ---------------------------------------------------------------------------

    def _properties(self, node: KafkaNode) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        client = "SASL_PLAINTEXT" if self.scram is not None else "PLAINTEXT"
        replicas = len(self.nodes)
        in_sync = min(2, replicas)
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "listeners": (
                f"CLIENT://127.0.0.1:{node.port},INTERNAL://127.0.0.1:{node.internal_port},"
                f"CONTROLLER://127.0.0.1:{node.controller_port}"
            ),
            "advertised.listeners": (
                f"CLIENT://127.0.0.1:{node.client_port},INTERNAL://127.0.0.1:{node.internal_port}"
            ),
            "listener.security.protocol.map": (
                f"CLIENT:{client},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
            ),
            "inter.broker.listener.name": "INTERNAL",
            "log.dirs": str(node.directory / "data"),
            "num.partitions": "3",
            "default.replication.factor": str(replicas),
            "min.insync.replicas": str(in_sync),
            "offsets.topic.replication.factor": str(replicas),
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": str(in_sync),
            "share.coordinator.state.topic.replication.factor": str(replicas),
            "share.coordinator.state.topic.min.isr": str(in_sync),
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true" if self.auto_create_topics else "false",
            # A killed node's partitions must move within seconds, not the 18 s default.
            "broker.session.timeout.ms": "6000",
            "broker.heartbeat.interval.ms": "1000",
            "unclean.leader.election.enable": "false",
        }
        if self.scram is not None:
            lines["sasl.enabled.mechanisms"] = self.scram.mechanism
            lines[f"listener.name.client.{self.scram.mechanism.lower()}.sasl.jaas.config"] = (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            )
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def _java(self, *args: str) -> list[str]:
        assert self.libs is not None
        return [
            "java",
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *(("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1") if self.quick_start else ()),
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            *args,
        ]

    def _format(self, node: KafkaNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j2.properties").write_text(_LOG4J)
        config = node.directory / "server.properties"
        config.write_text(self._properties(node))
        command = self._java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={self.cluster_id}",  # an id may begin with "-"
            f"--config={config}",
        )
        if self.scram is not None:
            command += [
                "--add-scram",
                f"{self.scram.mechanism}=[name={self.scram.username},"
                f"password={self.scram.password}]",
            ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {result.stdout}{result.stderr}")

    def _launch(self, node: KafkaNode) -> None:
        log = (node.directory / "server.log").open("ab")
        node.process = subprocess.Popen(
            self._java("kafka.Kafka", str(node.directory / "server.properties")),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def _wait_listening(self, node: KafkaNode, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if node.process is None or node.process.poll() is not None:
                raise RuntimeError(
                    f"kafka node {node.node_id} exited: {self.log_of(node.node_id)[-2000:]}"
                )
            try:
                socket.create_connection(("127.0.0.1", node.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"kafka node {node.node_id} did not listen on port {node.port}")

    def __enter__(self) -> ApacheKafka:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
