"""What goes into the pipeline and what comes out: a raw record, its outcome, the outage.

Shared by the pipeline, the Kafka consumer, ``replay`` and dead-letter reprocessing. Plain
data; nothing here blocks or raises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from alerts.notification import Notification


class Outcome(StrEnum):
    STORED = "stored"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


class DatabaseUnavailable(Exception):
    """The database could not be reached; the message was not stored and must be retried."""


class Incoming(NamedTuple):
    raw: bytes
    source: str = "kafka"  # kafka | replay | reprocess
    topic: str = ""
    partition: int | None = None
    offset: int | None = None


@dataclass
class Processed:
    outcome: Outcome
    message_type: str = ""
    control_id: str = ""
    reason: str = ""  # PHI-free: why it was ignored or dead-lettered
    error_class: str = ""  # parse | unit | value | size | processing (dead letters)
    item_dead_letters: tuple[str, ...] = ()  # error classes of items dead-lettered on their own
    evaluated: bool = False
    notifications: list[Notification] = field(default_factory=list)
