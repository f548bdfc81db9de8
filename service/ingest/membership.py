"""Consumer-group membership for readiness: joined the group, with or without partitions.

With more replicas than partitions some members get no partition; they are hot standbys that
take over at the next rebalance, healthy and meant to be "ready". aiokafka calls the
listener's ``on_partitions_assigned`` after every completed join, also with an empty
assignment, so "a join completed" is exactly "member of the group".
"""

from __future__ import annotations

from typing import Any

from aiokafka import ConsumerRebalanceListener


class GroupMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Writes ``state.joined`` and ``state.assigned`` (a ``ConsumerState``) after each join."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def on_partitions_revoked(self, revoked: Any) -> None:
        # A rebalance is starting; the member stays in the group (readiness unchanged).
        return None

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.state.assigned = len(assigned)
        self.state.joined = True
