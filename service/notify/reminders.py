"""The daemon's monitoring-reminder job: an APScheduler interval job running the sweep.

``service.notify.prevention.run_reminders`` is the whole job, a plain function of the database and
``now``; this component calls it with the wall clock every ``monitoring.sweep_interval_s``.
What survives a restart is the ``reminders`` table, not the scheduler: every run recomputes
what is due from the stored orders and results, and a reminder id already in the table is
never sent again. A restart therefore neither loses a reminder (the next run finds it due)
nor repeats one (its id is there), and no APScheduler job store is needed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from service.notify.ports import NotifyApp
from service.notify.prevention import ReminderReport, run_reminders
from service.runtime.clock import MessageClock
from service.runtime.scheduling import run_every

log = logging.getLogger(__name__)


class ReminderComponent:
    """Runs ``run_reminders`` every ``monitoring.sweep_interval_s`` seconds (wall clock)."""

    name = "reminders"

    def __init__(self, app: NotifyApp) -> None:
        self.app = app
        self.interval = app.settings.monitoring.sweep_interval_s
        self.runs = 0
        self.last: ReminderReport | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep every interval until ``stop`` is set (wall clock only)."""
        if isinstance(self.app.pipeline.clock, MessageClock):
            # Under a message clock the plans' times are message times; sweeping against the
            # wall clock would send every reminder of a historical feed at once. Reminders are
            # then driven explicitly (``run_reminders(..., now)``), as ``replay`` does.
            await stop.wait()
            return
        await run_every(stop, self.tick, seconds=self.interval, task="reminders")

    async def tick(self) -> None:
        """One sweep. Raises on an outage: ``run_every`` logs and counts it, and the next run
        tries again."""
        app = self.app
        self.last = await asyncio.to_thread(
            run_reminders,
            app.engine,
            app.clinical,
            datetime.now(UTC),
            delivery=app.pipeline.delivery,
        )
        self.runs += 1
        if self.last.sent:
            app.dispatcher.wake()
