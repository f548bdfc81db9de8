"""The one interface every pager transport implements, and the outcome it reports.

Transports do exactly one delivery attempt per call. They never retry, sleep or queue: retry
with backoff, jitter and a deadline lives only in ``service.notify.dispatcher``. A transport reports
whether a failed attempt is worth retrying (network errors, timeouts, HTTP 5xx, 429, WCTP
"try later" codes) or final (HTTP 4xx, a WCTP content error, a message that cannot be encoded).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol, runtime_checkable

from alerts.notification import Notification


class Outcome(Enum):
    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    FINAL = "final"


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    detail: str = ""  # short, PHI-free: "HTTP 503", "WCTP 403 invalid recipient", "timeout"
    status_class: str = ""  # bounded metric label: "2xx", "4xx", "5xx", "timeout", "network", ...

    @classmethod
    def delivered(cls, detail: str = "", status_class: str = "ok") -> DeliveryResult:
        return cls(Outcome.DELIVERED, detail, status_class)

    @classmethod
    def retryable(cls, detail: str, status_class: str = "error") -> DeliveryResult:
        return cls(Outcome.RETRYABLE, detail, status_class)

    @classmethod
    def final(cls, detail: str, status_class: str = "error") -> DeliveryResult:
        return cls(Outcome.FINAL, detail, status_class)


@runtime_checkable
class Pager(Protocol):
    """A transport. ``name`` is the configured channel name (a bounded metric label)."""

    name: str

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        """Make one delivery attempt of ``notification`` to ``recipient``.

        Must not raise for delivery problems: classify them into the result. May block on the
        network up to the transport's own timeout (asynchronously).
        """
        ...

    async def close(self) -> None:
        """Release connections and files. Idempotent."""
        ...
