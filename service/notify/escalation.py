"""Escalation as a job: re-page the next tier when nobody acknowledges, stop when someone acts.

``run_escalations(engine, settings, now, paging=...)`` is the whole job, a plain function of
the database and ``now``: the APScheduler job (``EscalationComponent``, in the daemon) calls it
with the wall clock; replay and tests call it with the message clock or any explicit time.
What a step does is ``service.notify.escalation_steps``'s; without a routing file the paging
is flat and nothing escalates.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from service.notify import metrics as paging_metrics
from service.notify.delivery import EscalationReport, Paging
from service.notify.ports import NotifyApp
from service.notify.routed import paging_for
from service.runtime.clock import MessageClock
from service.runtime.scheduling import run_every
from service.runtime.settings import Settings

__all__ = [
    "EscalationComponent",
    "EscalationReport",
    "paging_for",
    "run_escalations",
]

log = logging.getLogger(__name__)


def run_escalations(
    engine: Engine,
    settings: Settings,
    now: datetime,
    *,
    paging: Paging | None = None,
    queued_at: datetime | None = None,
) -> EscalationReport:
    """Take every escalation step due at ``now`` under ``paging`` (the application's; when
    not given, the one ``settings`` alone describe).

    Each alert in its own transaction; a step another instance took first is skipped. Raises
    ConfigError (routing file) and SQLAlchemyError (database); blocks on the database.
    """
    paging = paging or paging_for(settings)
    return paging.escalate(engine, now, queued_at)


class EscalationComponent:
    """The daemon's scheduler: an APScheduler interval job running ``run_escalations``
    with the App's paging (``NotifyApp``)."""

    name = "escalation"

    def __init__(self, app: NotifyApp) -> None:
        self.app = app
        self.paging = app.pipeline.delivery.paging
        self.interval = app.settings.paging.escalation_interval_s
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Run escalations every interval until ``stop`` is set (wall clock only)."""
        paging_metrics.prime(list(self.app.dispatcher.transports), self.paging.teams)
        if isinstance(self.app.pipeline.clock, MessageClock):
            # Under a message clock (demo, tests of a historical feed) the alerts' times are
            # message times, and escalating them against the wall clock would page every tier
            # at once: escalation is then driven explicitly (``run_escalations(..., now)``),
            # as in ``replay``.
            await stop.wait()
            return
        await run_every(stop, self._tick, seconds=self.interval, task="escalation")

    async def _tick(self) -> None:
        """One round. Raises on an outage: ``run_every`` logs and counts it, and the next
        run tries again."""
        await asyncio.to_thread(
            run_escalations,
            self.app.engine,
            self.app.settings,
            datetime.now(UTC),
            paging=self.paging,
        )
        self.runs += 1
