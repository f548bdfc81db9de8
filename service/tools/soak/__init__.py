"""Fault injection against the real daemon: machinery of the reliability suite and of soak.

Everything here drives a real ``labsentinel run`` process (``python -m service.cli.main run``)
against a real Tansu broker and a real PostgreSQL, and then audits what happened:

- ``postgres``: ``PrivatePostgres``, a throw-away cluster in a temp dir on a free port, which
  the outage scenario may stop and start (the shared server at :5432 is never touched).
- ``proxy``: ``TcpProxy`` and ``ProxiedBroker``, Tansu advertising a proxy's address, so every
  Kafka connection of the daemon goes through a proxy that can cut them all (and refuse new
  ones), counting what it cut.
- ``process``: ``DaemonProcess``, one ``labsentinel run`` subprocess with its own
  ``--pages-out`` file and log file.
- ``run`` and ``audit``: ``Run``, one scenario's topics, consumer group, database and feed (with
  planted cases), with ``wait_consumed`` (every record committed by the group, outbox empty)
  and ``audit`` (every planted case paged, nothing lost, repeated deliveries only with the same
  dedup key).
- ``scenarios`` (SIGKILL, database outage, broker cut, two instances, SIGTERM during a burst)
  and ``webhook`` (the failing pager, its faults counted).
- ``fuzz``: the pipeline fuzzer (``mutate``, ``fuzz_pipeline``).

The CI suite (tests/reliability and tests/fuzz, small numbers) and `labsentinel soak` (large
numbers) run exactly the same code. Blocking; not for use inside an event loop.
"""

from __future__ import annotations

from service.tools.soak.audit import Audit, ScenarioResult, audit_run, read_pages
from service.tools.soak.fuzz import FuzzReport, fuzz_pipeline, mutate
from service.tools.soak.postgres import PrivatePostgres
from service.tools.soak.process import LABSENTINEL, DaemonProcess, running
from service.tools.soak.proxy import ProxiedBroker, TcpProxy
from service.tools.soak.run import SESSION_TIMEOUT_MS, Run
from service.tools.soak.scenarios import (
    finish,
    http_status,
    scenario_broker_cut,
    scenario_database_outage,
    scenario_sigkill,
    scenario_sigterm_burst,
    scenario_two_instances,
    wait_until,
)
from service.tools.soak.webhook import FlakyWebhook, scenario_flaky_pager, webhook_config

# The name tests/security imports from before the split.
_http_status = http_status

__all__ = [
    "LABSENTINEL",
    "SESSION_TIMEOUT_MS",
    "Audit",
    "DaemonProcess",
    "FlakyWebhook",
    "FuzzReport",
    "PrivatePostgres",
    "ProxiedBroker",
    "Run",
    "ScenarioResult",
    "TcpProxy",
    "audit_run",
    "finish",
    "fuzz_pipeline",
    "http_status",
    "mutate",
    "read_pages",
    "running",
    "scenario_broker_cut",
    "scenario_database_outage",
    "scenario_flaky_pager",
    "scenario_sigkill",
    "scenario_sigterm_burst",
    "scenario_two_instances",
    "wait_until",
    "webhook_config",
]
