"""Metrics of the paging side (routing, escalation, acks), on ``service.runtime.metrics.REGISTRY``.

Deliveries per channel/outcome/status class, delivery latency and outbox depth/age already live
in ``service.runtime.metrics`` (the dispatcher updates them); this module adds escalations, acks,
time-to-ack, fallbacks, stops and silences. Labels are bounded sets; ``prime`` creates them
at zero at start so dashboards see every series before the first event.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Histogram

from service.notify.ack_tokens import ACK_ACTIONS
from service.runtime.metrics import REGISTRY, SEVERITIES

ESCALATION_KINDS = ("escalate", "repeat", "ack-timeout", "exhausted")
ACK_SOURCES = ("link", "api", "web", "cli")
STOP_REASONS = ("corrective", "resolved", "silenced")

escalations = Counter(
    "labsentinel_escalations_total",
    "Escalation steps taken, by severity and kind (next tier, policy repeat, ack timeout, "
    "policy exhausted).",
    ["severity", "kind"],
    registry=REGISTRY,
)
acks = Counter(
    "labsentinel_acks_total",
    "Acknowledgements, by action and source.",
    ["action", "source"],
    registry=REGISTRY,
)
time_to_ack = Histogram(
    "labsentinel_time_to_ack_seconds",
    "From the first page of an alert to its acknowledgement, by severity.",
    ["severity"],
    buckets=(30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400),
    registry=REGISTRY,
)
fallbacks = Counter(
    "labsentinel_fallback_deliveries_total",
    "Deliveries queued on the fallback route because another failed for good, by the failed "
    "channel.",
    ["channel"],
    registry=REGISTRY,
)
escalation_stops = Counter(
    "labsentinel_escalation_stops_total",
    "Escalations stopped without an ack, by reason.",
    ["reason"],
    registry=REGISTRY,
)
silenced = Counter(
    "labsentinel_silenced_notifications_total",
    "Notifications recorded but not delivered because a silence matched, by event.",
    ["event"],
    registry=REGISTRY,
)
routed = Counter(
    "labsentinel_routed_notifications_total",
    "Notifications routed, by team and whether they page.",
    ["team", "pages"],
    registry=REGISTRY,
)


def prime(channels: Iterable[str], teams: Iterable[str] = ()) -> None:
    """Create the known label sets at zero."""
    for severity in SEVERITIES:
        time_to_ack.labels(severity)
        for kind in ESCALATION_KINDS:
            escalations.labels(severity, kind)
    for action in ACK_ACTIONS:
        for source in ACK_SOURCES:
            acks.labels(action, source)
    for channel in channels:
        fallbacks.labels(channel)
    for reason in STOP_REASONS:
        escalation_stops.labels(reason)
    for event in ("alert", "update", "escalation", "resolved"):
        silenced.labels(event)
    for team in teams:
        for pages in ("true", "false"):
            routed.labels(team, pages)
