"""The bench's transport: records when each page was handed to it, in place of every channel."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from alerts.identity import split_patient_key
from alerts.notification import Notification
from alerts.pagers.base import DeliveryResult
from service.runtime.settings import Settings, load_settings


@dataclass
class RecordingPager:
    """A transport that records when each page was handed to it (bench only)."""

    name: str = "bench"
    handed: dict[tuple[str, str], float] = field(default_factory=dict)

    async def send(self, notification: Notification, recipient: str) -> DeliveryResult:
        # Keyed as the feed's planted cases are: the MRN as sent, without its authority.
        key = (split_patient_key(notification.patient_id)[0], notification.analyte or "")
        self.handed.setdefault(key, time.perf_counter())
        return DeliveryResult.delivered()

    async def close(self) -> None:
        return None


def standing_in(settings: Settings, pager: RecordingPager) -> dict[str, RecordingPager]:
    """The recording transport in place of every channel (routes page over team channels)."""
    return {name: pager for name in settings.channels}


def bench_settings(
    config: str | None, base: Settings, bootstrap: str, run_id: str, database_url: str
) -> Settings:
    """Settings of one bench run: its own topics and group, every route to the bench pager."""
    return load_settings(
        config,
        overrides={
            "database": {"url": database_url},
            "kafka": {
                "bootstrap_servers": bootstrap,
                "group_id": f"bench-{run_id}",
                "topics": [f"bench-oru-{run_id}", f"bench-rde-{run_id}"],
                "dead_letter_topic": f"bench-dlq-{run_id}",
                "session_timeout_ms": 6000,
                "max_batch_records": base.kafka.max_batch_records,
            },
            "routing": {"default_channels": ["bench"]},
            "channels": {"bench": {"type": "console"}},  # replaced by RecordingPager
            "dispatcher": {"poll_interval_s": 0.05},
            "api": {"port": 0},
        },
    )
