"""Delivers outbox rows to transports; the one place where retrying happens.

Each outbox row is one (notification, channel, recipient): a failing SMTP gateway neither
blocks nor re-sends the webhook, and one failing recipient never holds up another (rows are
sent concurrently, each with its own timeout). Per row: claim (lease) → send → record. The
row is marked sent only after the transport said so, so a crash between the two repeats a
delivery (with the same notification id) and never loses one.

Retryable failures back off exponentially with jitter up to ``retry_max_s``; a row still
failing at its deadline, or failing finally, ends as ``failed``: visible in metrics, logs and
the database, never retried forever (the Mirth lesson in PAGING.md).

A row that ends ``failed`` also marks its alert (``delivery_failed_at``: the worklist shows it),
writes the alert's history, and — unless the row was itself a fallback — asks the paging
(``service.notify.delivery.Paging``) to queue the same notification on the fallback route (the
pharmacy on-call under a routing file; nothing when flat), so a page nobody received still
reaches someone. The paging also says how much patient identity each channel may carry.

Several instances may dispatch from one PostgreSQL: claiming uses ``FOR UPDATE SKIP LOCKED``
plus a lease, so a row is sent by one instance at a time and a crashed instance's lease ends.

Writers: the dispatcher is the outbox's consumer, so it updates the outbox rows it claimed
(lease, attempts, status, next attempt) and writes ``delivery_attempts`` itself. New outbox
rows (the fallback route) are ``service.notify.outbox``'s to write, and the alert's failure
mark and history ``service.notify.lifecycle``'s. Who the fallback route is and how much
identity a page carries are the paging's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from alerts.notification import Notification, notification_from_json
from alerts.pagers.base import DeliveryResult, Outcome, Pager
from service.db.models import DeliveryAttempt, NotificationRow, OutboxRow
from service.notify import lifecycle
from service.notify import metrics as paging_metrics
from service.notify.delivery import Paging
from service.runtime import metrics
from service.runtime.clock import Clock, WallClock
from service.runtime.settings import DispatcherSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    outbox_id: int
    notification: Notification
    channel: str
    recipient: str
    attempts: int
    deadline_at: datetime
    alert_id: int | None = None


@dataclass(frozen=True)
class Attempt:
    claimed: Claimed
    result: DeliveryResult
    seconds: float


@dataclass
class DispatchStats:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def backoff_seconds(attempts: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: uniform in [½·d, d], d = min(max, initial·2^(n-1))."""
    ceiling = min(maximum, initial * (2 ** max(attempts - 1, 0)))
    return rng.uniform(ceiling / 2, ceiling)


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        transports: Mapping[str, Pager],
        settings: DispatcherSettings,
        *,
        paging: Paging,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``paging``: the application's (fallback route, page identity per channel)."""
        self.engine = engine
        self.transports = dict(transports)
        self.settings = settings
        self.clock = clock or WallClock()
        self.rng = rng or random.Random()
        self.owner = uuid.uuid4().hex[:16]
        self.running = False
        self.stats = DispatchStats()
        self.paging = paging
        # Set when the pipeline has queued notifications, so they leave now, not next poll.
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Deliver without waiting for the next poll (thread-safe only from the loop)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver due rows until ``stop`` is set; finishes the round in flight first."""
        self.running = True
        # A round delivers what is due, retries included: the "outbox_retry" task's metrics.
        metrics.job_scheduled("outbox_retry", self.settings.poll_interval_s)
        try:
            while not stop.is_set():
                try:
                    handled = await self.dispatch_due()
                    metrics.job_run("outbox_retry", ok=True)
                except Exception as exc:  # outage or bug: keep the loop alive, say so
                    log.warning("dispatch round failed", extra={"error": type(exc).__name__})
                    metrics.job_run("outbox_retry", ok=False)
                    handled = 0
                if handled == 0:
                    await self._idle(stop)
        finally:
            self.running = False
            metrics.job_scheduled("outbox_retry", 0)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Wait for the poll interval, a wake-up or stop, whichever comes first."""
        waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
        try:
            await asyncio.wait(
                waiters, timeout=self.settings.poll_interval_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            self._wake.clear()

    async def drain(self, max_rounds: int = 10_000) -> DispatchStats:
        """Deliver everything due now (used by replay and demo); returns totals."""
        for _ in range(max_rounds):
            if await self.dispatch_due() == 0:
                break
        return self.stats

    async def dispatch_due(self) -> int:
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            await asyncio.to_thread(self._update_gauges)
            return 0
        attempts = await asyncio.gather(*(self._send(item) for item in claimed))
        await asyncio.to_thread(self._record, attempts)
        return len(claimed)

    async def close(self) -> None:
        for transport in self.transports.values():
            await transport.close()

    # -- steps ----------------------------------------------------------------------------

    def _claim(self) -> list[Claimed]:
        now = self.clock.now()
        lease_until = now + timedelta(seconds=self.settings.lease_s)
        with Session(self.engine) as session, session.begin():
            rows = (
                session.execute(
                    select(OutboxRow)
                    .where(
                        col(OutboxRow.status) == "pending",
                        col(OutboxRow.next_attempt_at) <= now,
                        or_(
                            col(OutboxRow.lease_until).is_(None),
                            col(OutboxRow.lease_until) < now,
                        ),
                    )
                    .order_by(col(OutboxRow.id))
                    .limit(self.settings.batch_size)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            if not rows:
                return []
            ids = {row.notification_id for row in rows}
            found = session.execute(
                select(
                    col(NotificationRow.notification_id),
                    col(NotificationRow.payload),
                    col(NotificationRow.alert_id),
                ).where(col(NotificationRow.notification_id).in_(ids))
            ).all()
            payloads = {nid: (payload, alert_id) for nid, payload, alert_id in found}
            claimed = []
            for row in rows:
                row.lease_until, row.lease_owner = lease_until, self.owner
                payload, alert_id = payloads[row.notification_id]
                notification = self.paging.for_channel(
                    notification_from_json(json.loads(payload)), row.channel
                )
                claimed.append(
                    Claimed(
                        outbox_id=row.id or 0,
                        notification=notification,
                        channel=row.channel,
                        recipient=row.recipient,
                        attempts=row.attempts,
                        deadline_at=row.deadline_at,
                        alert_id=alert_id,
                    )
                )
            return claimed

    async def _send(self, item: Claimed) -> Attempt:
        started = time.perf_counter()
        transport = self.transports.get(item.channel)
        if transport is None:
            result = DeliveryResult.final(f"channel {item.channel!r} is not configured", "config")
        else:
            try:
                result = await asyncio.wait_for(
                    transport.send(item.notification, item.recipient),
                    self.settings.send_timeout_s,
                )
            except TimeoutError:
                result = DeliveryResult.retryable("timeout", "timeout")
            except Exception as exc:  # a transport must classify, but a bug must not kill us
                result = DeliveryResult.retryable(f"transport error {type(exc).__name__}")
        return Attempt(item, result, time.perf_counter() - started)

    def _record(self, attempts: list[Attempt]) -> None:
        now = self.clock.now()
        with Session(self.engine) as session, session.begin():
            for attempt in attempts:
                item, result = attempt.claimed, attempt.result
                row = session.get(OutboxRow, item.outbox_id)
                if row is None:
                    continue
                row.attempts += 1
                row.lease_until, row.lease_owner = None, ""
                row.last_error = "" if result.outcome is Outcome.DELIVERED else result.detail[:255]
                final_state = self._next_state(row, result, now)
                if final_state == "failed":
                    self._failed(session, row, item, result, now)
                session.add(
                    DeliveryAttempt(
                        outbox_id=item.outbox_id,
                        notification_id=item.notification.notification_id,
                        channel=item.channel,
                        attempted_at=now,
                        outcome=result.outcome.value,
                        detail=result.detail[:255],
                        latency_ms=attempt.seconds * 1000,
                    )
                )
                metrics.deliveries.labels(
                    item.channel, result.outcome.value, result.status_class or "none"
                ).inc()
                metrics.delivery_seconds.labels(item.channel).observe(attempt.seconds)
                if result.outcome is Outcome.DELIVERED:
                    handed_at = now - timedelta(seconds=attempt.seconds)
                    metrics.observe_handed_to_transport(item.notification, handed_at)
                self._log(item, result, final_state)

    def _next_state(self, row: OutboxRow, result: DeliveryResult, now: datetime) -> str:
        if result.outcome is Outcome.DELIVERED:
            row.status, row.sent_at = "sent", now
            self.stats.delivered += 1
            return "sent"
        if result.outcome is Outcome.RETRYABLE:
            delay = backoff_seconds(
                row.attempts, self.settings.retry_initial_s, self.settings.retry_max_s, self.rng
            )
            retry_at = now + timedelta(seconds=delay)
            if retry_at <= row.deadline_at:
                row.next_attempt_at = retry_at
                self.stats.retrying += 1
                return "retrying"
        row.status = "failed"
        self.stats.failed += 1
        metrics.deliveries.labels(row.channel, "failed", result.status_class or "none").inc()
        return "failed"

    def _failed(
        self,
        session: Session,
        row: OutboxRow,
        item: Claimed,
        result: DeliveryResult,
        now: datetime,
    ) -> None:
        """Make a failed delivery visible on its alert and queue the fallback route."""
        fallback: list[tuple[str, str]] = []
        if not row.fallback:  # a failing fallback does not fall back again
            fallback = self.paging.queue_fallback(session, row.notification_id, now)
            if fallback:
                paging_metrics.fallbacks.labels(row.channel).inc()
        if item.alert_id is None:
            return
        detail: dict[str, object] = {
            "channel": row.channel,
            "recipient": row.recipient,
            "attempts": row.attempts,
            "error": result.detail[:255],
            "fallback": [f"{c}:{r}" for c, r in fallback],
        }
        lifecycle.mark_delivery_failed(session, item.alert_id, now, row.notification_id, detail)

    def _log(self, item: Claimed, result: DeliveryResult, state: str) -> None:
        fields = {
            "notification_id": item.notification.notification_id,
            "channel": item.channel,
            "event": item.notification.event,
            "state": state,
            "detail": result.detail,
        }
        if state == "failed":
            log.error("delivery failed for good", extra=fields)
        elif state == "retrying":
            log.warning("delivery will be retried", extra=fields)
        else:
            log.info("delivered", extra=fields)

    def _update_gauges(self) -> None:
        with Session(self.engine) as session:
            count, oldest = session.execute(
                select(func.count(), func.min(col(OutboxRow.created_at))).where(
                    col(OutboxRow.status) == "pending"
                )
            ).one()
        metrics.outbox_depth.set(count)
        if oldest is not None:
            age = (self.clock.now() - oldest).total_seconds()
            metrics.outbox_oldest_age.set(max(age, 0.0))
        else:
            metrics.outbox_oldest_age.set(0)

    def pending_counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(col(OutboxRow.status), func.count()).group_by(col(OutboxRow.status))
            ).all()
        return {status: count for status, count in rows}
