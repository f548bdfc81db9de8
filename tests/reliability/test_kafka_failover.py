"""Broker failover and group rebalances on a real three-node Apache Kafka cluster.

The real `labsentinel run` process consumes a feed with planted cases from topics with
replication factor 3 and min.insync.replicas 2 (feed produced with acks=all) while a partition
leader is SIGKILLed and restarted, while all three nodes are restarted in turn, and while
three daemons join and leave its consumer group. The audit (service.tools.soak.Run.audit)
demands every planted case paged exactly once, every message of the feed processed (none
skipped), and, in the broker scenarios, one daemon process from start to end. CI sizes;
`labsentinel soak --only kafka-leader-kill kafka-rolling kafka-rebalance` runs them larger.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.tools.kafka import ApacheKafka
from service.tools.soak import PrivatePostgres, ScenarioResult
from service.tools.soak.kafka_scenarios import (
    scenario_kafka_leader_kill,
    scenario_kafka_rebalance,
    scenario_kafka_rolling_restart,
)

pytestmark = [pytest.mark.slow, pytest.mark.kafka]


@pytest.fixture(scope="module")
def kafka_cluster(request: pytest.FixtureRequest) -> Iterator[ApacheKafka]:
    """Three Apache Kafka nodes for this module (skipped without java or mvn, except in
    CI, and in the Tansu-only lane)."""
    try:
        if request.config.getoption("--broker") == "tansu":
            pytest.skip("Apache Kafka scenarios; this run is --broker tansu")
    except ValueError:
        pass  # no --broker option: run them
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Apache Kafka is required in CI and {', '.join(missing)} is missing")
        pytest.skip(f"Apache Kafka needs {', '.join(missing)}")
    with ApacheKafka(brokers=3) as cluster:
        yield cluster


def check(result: ScenarioResult) -> None:
    assert result.injected > 0, f"no fault was injected: {result.row()}"
    audit = result.audit
    assert audit.ok, (result.row(), audit.details)
    assert audit.paged == audit.planted and audit.lost == 0 and audit.doubled == 0
    assert audit.skipped == 0 and audit.inconsistent_keys == 0


def test_partition_leader_sigkilled_then_restarted(
    kafka_cluster: ApacheKafka, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_pg.create_database("kafka_leader_kill")
    result = scenario_kafka_leader_kill(kafka_cluster, url, tmp_path, messages=2000, seed=31)
    check(result)
    assert result.audit.restarts == 0, result.audit.details
    assert all(node.running() for node in kafka_cluster.nodes)


def test_rolling_restart_of_all_three_nodes(
    kafka_cluster: ApacheKafka, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_pg.create_database("kafka_rolling")
    result = scenario_kafka_rolling_restart(kafka_cluster, url, tmp_path, messages=2000, seed=32)
    check(result)
    assert result.injected == 3
    assert result.audit.restarts == 0, result.audit.details


def test_three_daemons_join_and_leave_one_group(
    kafka_cluster: ApacheKafka, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    url = private_pg.create_database("kafka_rebalance")
    result = scenario_kafka_rebalance(kafka_cluster, url, tmp_path, messages=2500, seed=33)
    check(result)
    # A alone, A+B, A+B+C, B+C, C alone: five group compositions, four rebalances.
    assert result.injected == 4, result.notes
    assert result.notes.count("->") == 4, result.notes
