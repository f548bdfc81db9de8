"""Held transport: takes every notification and sends it nowhere.

``labsentinel replay --no-deliver`` puts it in place of every configured channel, so that a
rehearsal with a production configuration records what it would have sent (routes,
recipients, the outbox) without paging anyone; only ``--pages-out`` receives the
notifications. Each delivery is recorded as delivered with the detail ``held``, so the
rehearsal database shows no failure, no retry and no fallback route that did not happen.
"""

from __future__ import annotations

from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult


class HeldPager:
    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        return DeliveryResult.delivered("held: not sent (replay --no-deliver)")

    async def close(self) -> None:
        return None
