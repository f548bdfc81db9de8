"""What a replicated Apache Kafka cluster says about itself, for the failover scenarios.

The questions a broker fault needs answered, each asked through the client protocol (metadata
and group requests, as any operator's tool would), never read from a broker's files:

- ``partition_states``: leader, replicas and in-sync replicas of each partition of topics.
- ``leader_of``, ``coordinator_of``: which node leads a partition, which one coordinates
  the consumer group (the ones to kill).
- ``wait_in_sync``: a restarted node is back in the ISR of every partition it replicates
  (including the group's offsets topic), so stopping the next node cannot leave a partition
  with fewer in-sync copies than ``min.insync.replicas``.
- ``group_members``: the consumer group's members (by client id) and the partitions each
  holds, to see a rebalance completed.

Every function opens its own admin client and closes it; all block (they run an event loop)
and so are not for use inside one. A node that is down is skipped by the client's bootstrap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

OFFSETS_TOPIC = "__consumer_offsets"
_POLL_S = 0.3
_REQUEST_TIMEOUT_MS = 5000

T = TypeVar("T")


@dataclass(frozen=True)
class PartitionState:
    leader: int  # -1 while no replica leads it
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def _ask(options: dict[str, Any], question: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
    async def go() -> T:
        admin = AIOKafkaAdminClient(request_timeout_ms=_REQUEST_TIMEOUT_MS, **options)
        await admin.start()
        try:
            return await question(admin)
        finally:
            await admin.close()

    return asyncio.run(asyncio.wait_for(go(), 15))


def partition_states(
    options: dict[str, Any], topics: Iterable[str]
) -> dict[tuple[str, int], PartitionState]:
    """(topic, partition) -> its state, from one metadata request. Raises KafkaError (or
    TimeoutError) when no node answers."""

    async def question(admin: AIOKafkaAdminClient) -> list[Any]:
        return await admin.describe_topics(list(topics))

    states = {}
    for topic in _ask(options, question):
        for p in topic["partitions"]:
            states[(topic["topic"], p["partition"])] = PartitionState(
                leader=p["leader"], replicas=tuple(p["replicas"]), isr=tuple(p["isr"])
            )
    return states


def leader_of(options: dict[str, Any], topic: str, partition: int) -> int:
    """The node id leading ``topic``/``partition``; raises LookupError while none does."""
    state = partition_states(options, [topic]).get((topic, partition))
    if state is None or state.leader < 0:
        raise LookupError(f"{topic}/{partition} has no leader")
    return state.leader


def coordinator_of(options: dict[str, Any], group: str) -> int:
    """The node id coordinating ``group`` (its offsets and membership). Raises KafkaError."""

    async def question(admin: AIOKafkaAdminClient) -> int:
        return await admin.find_coordinator(group)

    return _ask(options, question)


def _in_sync(states: dict[tuple[str, int], PartitionState], node_id: int) -> bool:
    if not states:
        return False
    return all(
        s.leader >= 0 and (node_id not in s.replicas or node_id in s.isr) for s in states.values()
    )


def wait_in_sync(
    options: dict[str, Any], node_id: int, topics: Iterable[str], timeout_s: float
) -> float:
    """Block until every partition of ``topics`` and of the offsets topic has a leader and
    has ``node_id`` in its ISR wherever it is a replica; returns the seconds waited. Raises
    TimeoutError."""
    wanted = [*topics, OFFSETS_TOPIC]
    started = time.monotonic()
    while True:
        try:
            if _in_sync(partition_states(options, wanted), node_id):
                return time.monotonic() - started
        except Exception:  # noqa: BLE001 - a cluster still electing answers with errors
            pass
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"node {node_id} not back in the ISR after {timeout_s} s")
        time.sleep(_POLL_S)


def wait_leader_moved(
    options: dict[str, Any], topic: str, partition: int, away_from: int, timeout_s: float
) -> int:
    """Block until ``topic``/``partition`` is led by a node other than ``away_from``;
    returns the new leader. Raises TimeoutError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            leader = leader_of(options, topic, partition)
            if leader != away_from:
                return leader
        except Exception:  # noqa: BLE001 - no leader yet, or a node not answering
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}/{partition} still led by node {away_from}")
        time.sleep(_POLL_S)


class GroupNotStable(Exception):
    """The group is rebalancing, empty or dead (the state is the message)."""


def group_members(options: dict[str, Any], group: str) -> dict[str, int]:
    """client id -> number of partitions assigned, for each member of ``group``. Raises
    GroupNotStable while it rebalances (or has no member), KafkaError when the coordinator
    cannot answer."""

    async def question(admin: AIOKafkaAdminClient) -> list[Any]:
        return await admin.describe_consumer_groups([group])

    members: dict[str, int] = {}
    for response in _ask(options, question):
        for described in response.to_object()["groups"]:
            if described["state"] != "Stable":
                raise GroupNotStable(described["state"])
            for member in described["members"]:
                raw = member["member_assignment"]
                held = ConsumerProtocolMemberAssignment.decode(raw).partitions() if raw else []
                members[member["client_id"]] = members.get(member["client_id"], 0) + len(held)
    return members


def wait_group(
    options: dict[str, Any],
    group: str,
    clients: set[str],
    timeout_s: float,
    *,
    broken: Callable[[], str | None] = lambda: None,
) -> dict[str, int]:
    """Block until ``group`` is stable with exactly the members ``clients`` (client ids),
    each holding at least one partition; returns the partitions per member. Raises
    TimeoutError, or RuntimeError with the text ``broken()`` returns once it returns one
    (say, a member's process exited)."""
    deadline = time.monotonic() + timeout_s
    seen: object = "nothing"
    while True:
        problem = broken()
        if problem:
            raise RuntimeError(f"group {group}: {problem}")
        try:
            members = seen = group_members(options, group)
            if set(members) == clients and all(members.values()):
                return members
        except Exception as exc:  # noqa: BLE001 - the coordinator moving or still loading
            seen = type(exc).__name__
        if time.monotonic() > deadline:
            raise TimeoutError(f"group {group}: last seen {seen}, wanted {sorted(clients)}")
        time.sleep(_POLL_S)
