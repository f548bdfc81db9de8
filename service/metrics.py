"""Prometheus metrics. Labels are bounded sets (topics, message types, outcomes, channels,
status classes, severities); never a patient, a control id or free text.

Label sets that are known at start are created at zero (``prime``), so dashboards and alert
rules see every series before the first event, as Alertmanager does.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

MESSAGE_TYPES = ("ORU^R01", "RDE^O11", "RAS^O17", "other", "unparsed")
OUTCOMES = ("stored", "ignored", "duplicate", "dead_letter")
DEAD_LETTER_CLASSES = ("parse", "unit", "processing")
EVENTS = ("alert", "update", "escalation", "resolved", "reminder", "advisory")
SEVERITIES = ("info", "warning", "high", "critical")
DELIVERY_OUTCOMES = ("delivered", "retryable", "final", "failed")

messages_consumed = Counter(
    "labsentinel_messages_consumed_total",
    "HL7 messages processed, by topic, message type and outcome.",
    ["topic", "message_type", "outcome"],
    registry=REGISTRY,
)
dead_letters = Counter(
    "labsentinel_dead_letters_total",
    "Messages written to the dead-letter store, by reason class.",
    ["reason_class"],
    registry=REGISTRY,
)
processing_seconds = Histogram(
    "labsentinel_processing_seconds",
    "Time to process one fetched batch (parse, store, evaluate, commit).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
alerts_total = Counter(
    "labsentinel_alerts_total",
    "Notifications decided, by rule, severity and event.",
    ["rule", "severity", "event"],
    registry=REGISTRY,
)
deliveries = Counter(
    "labsentinel_deliveries_total",
    "Delivery attempts by channel, outcome and status class.",
    ["channel", "outcome", "status_class"],
    registry=REGISTRY,
)
delivery_seconds = Histogram(
    "labsentinel_delivery_seconds",
    "Time one delivery attempt took, by channel.",
    ["channel"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
outbox_depth = Gauge(
    "labsentinel_outbox_pending",
    "Deliveries waiting in the outbox.",
    registry=REGISTRY,
)
outbox_oldest_age = Gauge(
    "labsentinel_outbox_oldest_age_seconds",
    "Age of the oldest pending delivery.",
    registry=REGISTRY,
)
database_errors = Counter(
    "labsentinel_database_errors_total",
    "Database outages seen by the consumer (each pauses consumption).",
    registry=REGISTRY,
)
consumer_lag = Gauge(
    "labsentinel_consumer_lag",
    "Messages behind the end of each assigned partition.",
    ["topic", "partition"],
    registry=REGISTRY,
)
consumer_paused = Gauge(
    "labsentinel_consumer_paused",
    "1 while consumption is paused because the database is unreachable.",
    registry=REGISTRY,
)


def normalise_message_type(message_type: str) -> str:
    return message_type if message_type in MESSAGE_TYPES else "other"


def prime(topics: Iterable[str], channels: Iterable[str]) -> None:
    """Create the known label sets at zero."""
    for topic in topics:
        for message_type in MESSAGE_TYPES:
            for outcome in OUTCOMES:
                messages_consumed.labels(topic, message_type, outcome)
    for reason in DEAD_LETTER_CLASSES:
        dead_letters.labels(reason)
    for severity in SEVERITIES:
        for event in EVENTS:
            alerts_total.labels("iron-antiresorptive-mineral", severity, event)
    for channel in channels:
        delivery_seconds.labels(channel)
        for outcome in DELIVERY_OUTCOMES:
            deliveries.labels(channel, outcome, "ok" if outcome == "delivered" else "error")
