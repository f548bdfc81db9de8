"""The Apache Kafka a test or a developer starts: the configuration each node gets.

Starting the nodes is proven by every ``[kafka]`` variant of the broker tests and by the
failover scenarios; here, what makes a cluster replicated and what makes it ask for SCRAM.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from service.tools.kafka import ApacheKafka, Scram


def _properties(kafka: ApacheKafka, node_id: int) -> dict[str, str]:
    text = kafka._properties(kafka.node(node_id))
    return dict(line.split("=", 1) for line in text.splitlines())


def test_three_nodes_replicate_every_topic_and_need_two_in_sync(tmp_path: Path) -> None:
    kafka = ApacheKafka(3, workdir=tmp_path)
    for node in kafka.nodes:
        props = _properties(kafka, node.node_id)
        assert props["controller.quorum.voters"].count("@127.0.0.1:") == 3
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["log.dirs"].startswith(str(node.directory))
    assert len(set(kafka.bootstrap_servers.split(","))) == 3


def test_one_node_needs_no_replicas(tmp_path: Path) -> None:
    props = _properties(ApacheKafka(1, workdir=tmp_path), 1)
    assert props["default.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_scram_guards_the_client_listener_only(tmp_path: Path) -> None:
    kafka = ApacheKafka(1, workdir=tmp_path, scram=Scram("labsentinel", "pw-" + "x" * 30))
    props = _properties(kafka, 1)
    assert "CLIENT:SASL_PLAINTEXT" in props["listener.security.protocol.map"]
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert kafka.client_options()["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kafka.settings_environment()["LABSENTINEL_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"


def test_a_proxy_is_advertised_instead_of_the_node(tmp_path: Path) -> None:
    kafka = ApacheKafka(1, workdir=tmp_path, advertised_port=40000)
    props = _properties(kafka, 1)
    assert "CLIENT://127.0.0.1:40000" in props["advertised.listeners"]
    assert kafka.bootstrap_servers == "127.0.0.1:40000"


@pytest.mark.parametrize("brokers", [0, 2, 5])
def test_only_one_or_three_nodes(brokers: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ApacheKafka(brokers, workdir=tmp_path)
