"""Prometheus metrics. Labels are bounded sets (topics, message types, outcomes, channels,
status classes, severities); never a patient, a control id or free text.

Label sets that are known at start are created at zero (``prime``), so dashboards and alert
rules see every series before the first event, as Alertmanager does.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable
from datetime import datetime
from importlib import metadata
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from service.runtime.clinical import ANTIRESORPTIVE, IV_IRON

# The project's own registry (tests build several apps in one process without duplicates).
# prometheus_client attaches its process and platform collectors only to its global default
# registry, so they are registered here explicitly: without them no ``process_*`` series.
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

MESSAGE_TYPES = ("ORU^R01", "RDE^O11", "RAS^O17", "other", "unparsed")
OUTCOMES = ("stored", "ignored", "duplicate", "dead_letter")
DEAD_LETTER_CLASSES = ("parse", "unit", "value", "size", "processing", "unrecorded")
EVENTS = ("alert", "update", "escalation", "resolved", "reminder", "advisory")
SEVERITIES = ("info", "warning", "high", "critical")
DELIVERY_OUTCOMES = ("delivered", "retryable", "final", "failed")
EXPOSURE_CLASSES = (IV_IRON, ANTIRESORPTIVE)
# Periodic tasks, a fixed label set so every series exists at zero (unknown names count as
# "other"): the escalation and monitoring-reminder APScheduler jobs, the dispatcher's outbox
# rounds (delivery and retry) and the database reads behind the /metrics gauges. The label
# is ``task``, not ``job``: Prometheus' target label ``job`` would rename it ``exported_job``.
SCHEDULER_TASKS = ("escalation", "outbox_retry", "reminders", "exposure_refresh", "alert_gauges")
JOB_OUTCOMES = ("ok", "error")

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
worklist_findings = Counter(
    "labsentinel_worklist_findings_total",
    "Findings that went to the worklist instead of paging (results already older than the "
    "backfill limit when found), by analyte and the severity they would have paged with.",
    ["analyte", "severity"],
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

# Detection latency: how long after the facts a page reaches a transport. Buckets run from
# sub-second (live feed) to days (results that arrive or are evaluated late).
_DETECTION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 7 * 86400)
detection_from_arrival = Histogram(
    "labsentinel_detection_seconds",
    "Result arrival (the message that produced the notification was stored) to the page "
    "being handed to a transport, by event.",
    ["event"],
    buckets=_DETECTION_BUCKETS,
    registry=REGISTRY,
)
detection_from_observation = Histogram(
    "labsentinel_detection_from_observation_seconds",
    "Observation (specimen collection) time of the result to the page being handed to a "
    "transport, by event.",
    ["event"],
    buckets=_DETECTION_BUCKETS,
    registry=REGISTRY,
)
active_exposures = Gauge(
    "labsentinel_active_exposure_windows",
    "Exposure windows open now: IV iron risk windows and antiresorptive effect intervals.",
    ["drug_class"],
    registry=REGISTRY,
)
patients_at_risk = Gauge(
    "labsentinel_patients_at_risk",
    "Patients with an IV iron risk window open while an antiresorptive is in effect.",
    registry=REGISTRY,
)
scheduler_job_runs = Counter(
    "labsentinel_scheduler_job_runs_total",
    "Runs of periodic tasks, by task and outcome.",
    ["task", "outcome"],
    registry=REGISTRY,
)
scheduler_last_success = Gauge(
    "labsentinel_scheduler_job_last_success_timestamp_seconds",
    "Unix time of the task's latest successful run; 0 until it first succeeds.",
    ["task"],
    registry=REGISTRY,
)
scheduler_interval = Gauge(
    "labsentinel_scheduler_job_interval_seconds",
    "How often the task is meant to run in this process; 0 when it does not run here (API "
    "disabled, or escalation and reminders driven by a message clock).",
    ["task"],
    registry=REGISTRY,
)
# Read from the database at scrape time (service.api.views.alert_gauges): what any process,
# the CLI and other replicas included, did to alerts.
alert_actions = Counter(
    "labsentinel_alert_actions_total",
    "Alert history events written to the database by any process (daemon, CLI, API, other "
    "replicas) since this process first read them, by action and source.",
    ["action", "source"],
    registry=REGISTRY,
)
open_alerts = Gauge(
    "labsentinel_open_alerts",
    "Open alerts in the database, by severity and whether someone acknowledged them.",
    ["severity", "acknowledged"],
    registry=REGISTRY,
)
active_silences = Gauge(
    "labsentinel_active_silences",
    "Silences in force (not expired) in the database.",
    registry=REGISTRY,
)
build_info = Gauge(
    "labsentinel_build_info",
    "Always 1; the labels name the running version of LabSentinel and of Python.",
    ["version", "python"],
    registry=REGISTRY,
)
http_requests = Counter(
    "labsentinel_http_requests_total",
    "HTTP requests served, by route template, method and status class.",
    ["route", "method", "status_class"],
    registry=REGISTRY,
)
# Routing and roster reloads (SIGHUP, service.notify.reload): a failed one keeps the old.
config_reloads = Counter(
    "labsentinel_config_reload_total",
    "Reloads of the routing file and roster changes, by result (ok, error).",
    ["result"],
    registry=REGISTRY,
)
config_loaded_at = Gauge(
    "labsentinel_config_loaded_timestamp_seconds",
    "When the routing and rosters in use were loaded (Unix time).",
    registry=REGISTRY,
)
config_info = Gauge(
    "labsentinel_config_info",
    "Always 1; the label is the hash of the routing file and roster changes in use (one series).",
    ["version"],
    registry=REGISTRY,
)


def observe_handed_to_transport(notification: Any, handed_at: datetime) -> None:
    """Record detection latency for one notification handed to a transport at ``handed_at``.

    ``notification`` is an ``alerts.notification.Notification``: ``created_at`` is when the
    message that produced it was stored (the pipeline's clock), ``observed_at`` the result's
    collection time, both ISO 8601. Unparseable times are skipped, never raised.
    """
    event = notification.event if notification.event in EVENTS else "alert"
    for attr, histogram in (
        ("created_at", detection_from_arrival),
        ("observed_at", detection_from_observation),
    ):
        try:
            moment = datetime.fromisoformat(getattr(notification, attr))
        except (TypeError, ValueError):
            continue
        if moment.tzinfo is None:
            continue
        histogram.labels(event).observe(max((handed_at - moment).total_seconds(), 0.0))


def job_run(task: str, ok: bool) -> None:
    """Count one run of a periodic task and, when ``ok``, its success time (bounded label:
    unknown task names become "other")."""
    name = task if task in SCHEDULER_TASKS else "other"
    scheduler_job_runs.labels(name, "ok" if ok else "error").inc()
    if ok:
        scheduler_last_success.labels(name).set(time.time())


def job_scheduled(task: str, interval_s: float) -> None:
    """Say that ``task`` runs in this process every ``interval_s`` seconds (what the
    staleness alert compares the last success with)."""
    name = task if task in SCHEDULER_TASKS else "other"
    scheduler_interval.labels(name).set(interval_s)


def package_version() -> str:
    try:
        return metadata.version("labsentinel")
    except metadata.PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


build_info.labels(package_version(), platform.python_version()).set(1)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


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
        for analyte in ("phosphate", "calcium", "ionized_calcium"):
            worklist_findings.labels(analyte, severity)
    for channel in channels:
        delivery_seconds.labels(channel)
        for outcome in DELIVERY_OUTCOMES:
            deliveries.labels(channel, outcome, "ok" if outcome == "delivered" else "error")
    prime_service()


def prime_service() -> None:
    """Create the label sets of the detection, exposure and scheduler metrics at zero."""
    for event in EVENTS:
        detection_from_arrival.labels(event)
        detection_from_observation.labels(event)
    for drug_class in EXPOSURE_CLASSES:
        active_exposures.labels(drug_class)
    for task in SCHEDULER_TASKS:
        scheduler_last_success.labels(task)
        scheduler_interval.labels(task)
        for outcome in JOB_OUTCOMES:
            scheduler_job_runs.labels(task, outcome)
