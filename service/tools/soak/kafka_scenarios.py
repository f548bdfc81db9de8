"""Broker faults and group rebalances on a real Apache Kafka cluster (``service.tools.kafka``).

- ``scenario_kafka_leader_kill``: three nodes, topics with replication factor 3 and
  ``min.insync.replicas`` 2, the feed produced with ``acks=all``; SIGKILL the leader of a
  partition the daemon is consuming once the daemon has committed part of the feed, publish
  more while that node is down, bring it back.
- ``scenario_kafka_rolling_restart``: each of the three nodes in turn stopped with SIGTERM
  (Kafka's controlled shutdown), the feed flowing while it is down, started again, and the
  next one stopped only once it is back in the ISR of every partition.
- ``scenario_kafka_rebalance``: daemons A, B, C join one consumer group one by one, then A
  leaves (SIGTERM) and B dies (SIGKILL); C finishes the feed.

In the broker scenarios the daemon must ride the fault out: one process, same PID from start
to end, exit status 0 on the final SIGTERM (``audit.restarts`` counts any breach). Every step
waits for an event (offsets committed, a leader elected, a node in sync, a group stable with
the expected members), never for a fixed time. Blocking; not for use inside an event loop.

aiokafka 0.14 knows only the eager rebalance protocol (every member gives up every partition
at each rebalance; no cooperative-sticky assignor, aio-libs/aiokafka#1126); the daemon uses
its default round-robin assignor, and a partition that moves is re-read from its last
committed offset by its new owner, the database's de-duplication making that harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition

from service.tools.kafka import ApacheKafka
from service.tools.soak.audit import ScenarioResult
from service.tools.soak.kafka_faults import (
    coordinator_of,
    partition_states,
    wait_group,
    wait_in_sync,
    wait_leader_moved,
)
from service.tools.soak.process import DaemonProcess
from service.tools.soak.run import SESSION_TIMEOUT_MS, Run
from service.tools.soak.scenarios import FAULT_SEEN_TIMEOUT_S, finish, wait_until

# A node's restart: JVM start, log recovery, catching up its replicas (slow on 2 shared cores).
NODE_BACK_TIMEOUT_S = 120.0
# A daemon joining: imports, migrations of a fresh database, the group join; on two cores
# shared with a CI's other jobs this has taken most of a minute. An upper bound, not a window.
JOIN_TIMEOUT_S = 120.0


def _slices(run: Run, parts: int) -> list[int]:
    """Where the feed is cut into ``parts`` slices published one by one (upper bounds)."""
    total = len(run.feed.records)
    return [total * (i + 1) // parts for i in range(parts)]


def _stays_up(run: Run, daemon: DaemonProcess, pid: int, result: ScenarioResult) -> None:
    """Record in the audit whether ``daemon`` ran as one process throughout: started once,
    never exited before the final SIGTERM, which it answered with exit status 0."""
    assert daemon.process is not None
    restarts = daemon.starts - 1
    if daemon.process.pid != pid or daemon.process.returncode != 0:
        restarts += 1
        result.audit.details.append(
            f"daemon exit status {daemon.process.returncode}; see {daemon.log_path}"
        )
    result.audit.restarts = restarts


def _consumed_while(run: Run, daemon: DaemonProcess, what: str) -> None:
    """Block until the group has committed everything published so far (the daemon read it
    from whichever nodes lead now)."""
    wait_until(
        lambda: run.committed() == run.published or not daemon.alive,
        timeout_s=FAULT_SEEN_TIMEOUT_S,
        what=f"the daemon consuming everything published {what}",
    )
    if not daemon.alive:
        raise RuntimeError(f"daemon exited {what}; see {daemon.log_path}")


def scenario_kafka_leader_kill(
    cluster: ApacheKafka,
    database_url: str,
    workdir: Path,
    *,
    messages: int = 3000,
    seed: int = 21,
    timeout_s: float = 180.0,
) -> ScenarioResult:
    """SIGKILL the leader of a partition the daemon consumes mid-run, then restart it.

    The victim is the group's coordinator when it leads one of the daemon's partitions (it
    then takes the offsets and the membership with it: the worst single node to lose), else
    the leader of partition 0 of the results topic.

    The feed comes in three slices: the first before the daemon starts; the kill once the
    group has committed half of it; the second while the node is down (``acks=all`` is met
    by the two remaining replicas), which the daemon must consume from the new leaders before
    the node is restarted; the third once the node is back in sync. ``injected`` counts the
    nodes killed. Raises TimeoutError when a step's event never comes.
    """
    if cluster.replication_factor < 3:
        raise ValueError("the leader kill needs a three-node cluster")
    started = time.monotonic()
    options = cluster.client_options()
    run = Run(cluster, database_url, workdir, messages=messages, seed=seed, replication=3)
    first, second, _ = _slices(run, 3)
    run.publish(first)
    daemon = run.daemon()
    try:
        daemon.start()
        assert daemon.process is not None
        pid = daemon.process.pid
        run.wait_progress(first // 2, JOIN_TIMEOUT_S, daemon)
        tp, victim, coordinator = _victim(options, run)
        killed_at = time.monotonic()
        cluster.kill_node(victim)
        new_leader = wait_leader_moved(
            options, tp.topic, tp.partition, victim, FAULT_SEEN_TIMEOUT_S
        )
        elected_s = time.monotonic() - killed_at
        run.publish(second)
        before = (run.committed_offsets() or {}).get(tp, 0)
        _consumed_while(run, daemon, "while the killed leader was down")
        after = (run.committed_offsets() or {}).get(tp, 0)
        down_s = time.monotonic() - killed_at
        cluster.start_node(victim, NODE_BACK_TIMEOUT_S)
        in_sync_s = wait_in_sync(options, victim, run.topics, NODE_BACK_TIMEOUT_S)
        run.publish()
        result = finish(
            run,
            timeout_s=timeout_s,
            fault="SIGKILL of a partition leader (3 nodes, RF 3, min ISR 2), then restart",
            injected=1,
            started=started,
            notes=(
                f"node {victim} led {tp.topic}/{tp.partition}"
                + (" and coordinated the group" if victim == coordinator else "")
                + f"; node {new_leader} elected in "
                f"{elected_s:.1f} s; {after - before} records of that partition read from "
                f"it while node {victim} was down ({down_s:.1f} s); back in sync "
                f"{in_sync_s:.1f} s after restart; daemon PID unchanged"
            ),
            alive=[daemon],
        )
        _stays_up(run, daemon, pid, result)
        return result
    finally:
        run.close()
        for node in cluster.nodes:
            if not node.running():
                cluster.start_node(node.node_id, NODE_BACK_TIMEOUT_S)


def _victim(options: dict[str, Any], run: Run) -> tuple[TopicPartition, int, int]:
    """The partition whose leader is killed, that leader and the group's coordinator."""
    coordinator = coordinator_of(options, run.group)
    states = partition_states(options, run.topics)
    led = sorted(key for key, state in states.items() if state.leader == coordinator)
    topic, partition = led[0] if led else (run.topics[0], 0)
    return TopicPartition(topic, partition), states[(topic, partition)].leader, coordinator


def scenario_kafka_rolling_restart(
    cluster: ApacheKafka,
    database_url: str,
    workdir: Path,
    *,
    messages: int = 3000,
    seed: int = 22,
    timeout_s: float = 180.0,
) -> ScenarioResult:
    """Stop (SIGTERM), restart and wait in sync each node in turn, the feed flowing.

    The feed comes in five slices: one before the daemon starts, one published while each
    node is down (consumed by the daemon before that node is restarted), one at the end.
    ``injected`` counts the nodes restarted. Raises TimeoutError when a step's event never
    comes.
    """
    if cluster.replication_factor < 3:
        raise ValueError("the rolling restart needs a three-node cluster")
    started = time.monotonic()
    options = cluster.client_options()
    run = Run(cluster, database_url, workdir, messages=messages, seed=seed, replication=3)
    cuts = _slices(run, len(cluster.nodes) + 2)
    run.publish(cuts[0])
    daemon = run.daemon()
    restarted, slowest_stop, slowest_sync = 0, 0.0, 0.0
    try:
        daemon.start()
        assert daemon.process is not None
        pid = daemon.process.pid
        run.wait_progress(0, JOIN_TIMEOUT_S, daemon)
        for i, node in enumerate(cluster.nodes):
            t0 = time.monotonic()
            cluster.stop_node(node.node_id)
            slowest_stop = max(slowest_stop, time.monotonic() - t0)
            run.publish(cuts[i + 1])
            _consumed_while(run, daemon, f"while node {node.node_id} was stopped")
            cluster.start_node(node.node_id, NODE_BACK_TIMEOUT_S)
            slowest_sync = max(
                slowest_sync, wait_in_sync(options, node.node_id, run.topics, NODE_BACK_TIMEOUT_S)
            )
            restarted += 1
        run.publish()
        result = finish(
            run,
            timeout_s=timeout_s,
            fault="rolling restart of all 3 Kafka nodes (SIGTERM, restart, back in ISR)",
            injected=restarted,
            started=started,
            notes=(
                f"slowest controlled shutdown {slowest_stop:.1f} s, slowest return to the "
                f"ISR {slowest_sync:.1f} s; daemon PID unchanged"
            ),
            alive=[daemon],
        )
        _stays_up(run, daemon, pid, result)
        return result
    finally:
        run.close()
        for node in cluster.nodes:
            if not node.running():
                cluster.start_node(node.node_id, NODE_BACK_TIMEOUT_S)


def scenario_kafka_rebalance(
    cluster: ApacheKafka,
    database_url: str,
    workdir: Path,
    *,
    messages: int = 3000,
    seed: int = 23,
    timeout_s: float = 180.0,
) -> ScenarioResult:
    """A, B and C join one group in turn; A leaves (SIGTERM); B dies (SIGKILL); C finishes.

    Topics are not keyed by patient, so one patient's messages are spread over partitions
    that different daemons hold. Each step publishes a slice of the feed and waits until the
    group is stable with the expected members (each holding a partition) and has committed
    more than before; B's death is seen only once its session (``SESSION_TIMEOUT_MS``)
    expires. ``injected`` counts the rebalances seen.
    """
    started = time.monotonic()
    options = cluster.client_options()
    run = Run(
        cluster,
        database_url,
        workdir,
        messages=messages,
        seed=seed,
        keyed=False,
        replication=cluster.replication_factor,
    )
    cuts = _slices(run, 6)
    daemons = {
        name: run.daemon(name, LABSENTINEL_KAFKA_CLIENT_ID=f"labsentinel-{name}") for name in "abc"
    }
    a, b, c = daemons["a"], daemons["b"], daemons["c"]
    seen: list[str] = []
    rebalances = 0

    def exited(members: str) -> str | None:
        dead = [m for m in members if not daemons[m].alive]
        return f"daemon {dead} exited; see {workdir}" if dead else None

    def step(members: str, newest: DaemonProcess, action: Callable[[], object]) -> None:
        nonlocal rebalances
        before = run.committed() or 0
        run.publish(cuts[len(seen)])  # seen: one entry per group composition so far
        action()
        held = wait_group(
            options,
            run.group,
            {f"labsentinel-{m}" for m in members},
            JOIN_TIMEOUT_S + SESSION_TIMEOUT_MS / 1000,
            broken=lambda: exited(members),
        )
        rebalances += 1
        run.wait_progress(before, FAULT_SEEN_TIMEOUT_S, newest)
        seen.append("+".join(f"{k[-1].upper()}:{v}" for k, v in sorted(held.items())))

    term_status: list[int] = []
    try:
        run.publish(cuts[0])
        a.start()
        run.wait_progress(0, JOIN_TIMEOUT_S, a)
        held = wait_group(
            options, run.group, {"labsentinel-a"}, JOIN_TIMEOUT_S, broken=lambda: exited("a")
        )
        seen.append(f"A:{held['labsentinel-a']}")
        step("ab", b, b.start)
        step("abc", c, c.start)
        step("bc", c, lambda: term_status.append(a.terminate(30)))
        step("c", c, b.kill)
        if term_status != [0]:
            raise AssertionError(f"A's SIGTERM exit status {term_status}; see {a.log_path}")
        run.publish()
        return finish(
            run,
            timeout_s=timeout_s,
            fault="3 daemons join one group one by one, one leaves (SIGTERM), one dies "
            "(SIGKILL); topics not keyed",
            injected=rebalances,
            started=started,
            notes="partitions held: " + " -> ".join(seen),
            alive=[c],
        )
    finally:
        run.close()


def kafka_runs(
    cluster: ApacheKafka,
    database: Callable[[str], str],
    workdir: Path,
    *,
    messages: int,
    seed: int,
    timeout_s: float = 600.0,
) -> list[tuple[str, Callable[[], ScenarioResult]]]:
    """The scenarios above as `labsentinel soak` names them, each with its own database
    (``database(name)`` returns a URL, asked for only when the scenario runs) and folder
    under ``workdir``."""
    table = [
        ("kafka-leader-kill", scenario_kafka_leader_kill, "leader"),
        ("kafka-rolling", scenario_kafka_rolling_restart, "rolling"),
        ("kafka-rebalance", scenario_kafka_rebalance, "rebalance"),
    ]

    def bound(
        name: str, scenario: Callable[..., ScenarioResult], db: str, offset: int
    ) -> Callable[[], ScenarioResult]:
        return lambda: scenario(
            cluster,
            database(db),
            workdir / name,
            messages=messages,
            seed=seed + 20 + offset,
            timeout_s=timeout_s,
        )

    return [
        (name, bound(name, scenario, db, offset))
        for offset, (name, scenario, db) in enumerate(table)
    ]
