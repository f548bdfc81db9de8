"""Fakes for LabSentinel's own ports (never for third-party libraries)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult


@dataclass
class FakePager:
    """Records deliveries; can be told to fail the next attempts."""

    name: str = "fake"
    sent: list[tuple[Notification, str]] = field(default_factory=list)
    script: deque[DeliveryResult] = field(default_factory=deque)
    closed: bool = False

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        if self.script:
            result = self.script.popleft()
            if result.outcome.value != "delivered":
                return result
        self.sent.append((notification, recipient))
        return DeliveryResult.delivered()

    async def close(self) -> None:
        self.closed = True
