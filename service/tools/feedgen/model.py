"""The generated feed: Kafka-shaped records plus the cases planted in it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

MESSAGE_SEPARATOR = b"\r\n\r\n"


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """One Kafka record: `value` is one HL7 message whose segments each end in CR."""

    topic: str  # the oru_topic or rde_topic given to generate_feed
    key: bytes | None  # the patient's MR identifier (ASCII); None when keyed=False or junk
    value: bytes
    # oru-relevant (carries phosphate, calcium or albumin), oru-background, rde-iron,
    # rde-antiresorptive, rde-other, correction, duplicate, garbage
    kind: str


@dataclass(frozen=True, slots=True)
class PlantedCase:
    """A patient in whom exactly one page (per patient and analyte) is expected.

    The first five fields are the contract; the rest describe the case for assertions.
    """

    patient_id: str  # PID-3.1 of the MR repetition, e.g. "MRN04512345"
    analyte: str  # "phosphate" | "calcium"
    severity: str  # "high" | "critical" at the first (and only) page
    iron_drug: str
    antiresorptive_drug: str
    description: str
    variant: str = ""
    value: float = 0.0  # the paging result as reported (numeric part of an SN)
    unit: str = ""
    code: str = ""  # LOINC of the paging result
    observed_at: datetime | None = None  # OBX-14 of the paging result
    iron_dose_at: datetime | None = None  # TQ1-7 of the iron order
    antiresorptive_dose_at: datetime | None = None  # TQ1-7 of the antiresorptive order
    late_order: str = ""  # "", "iron" or "antiresorptive": that RDE arrives after the result


@dataclass(frozen=True, slots=True)
class Feed:
    records: tuple[FeedRecord, ...]
    planted: tuple[PlantedCase, ...]

    def to_file_bytes(self) -> bytes:
        """The feed as a replay file: segments joined by CR, messages by CRLF CRLF.

        A blank line separates messages, which is what `labsentinel replay` splits on.
        Garbage records never contain CR or LF, so each stays one (bad) message.
        """
        if not self.records:
            return b""
        body = MESSAGE_SEPARATOR.join(r.value.rstrip(b"\r") for r in self.records)
        return body + b"\r\n"


def write_feed_file(feed: Feed, path: Path) -> None:
    """Write `feed.to_file_bytes()` to `path` (blocking file I/O; raises OSError)."""
    Path(path).write_bytes(feed.to_file_bytes())


def feed_summary(feed: Feed) -> dict[str, Any]:
    """JSON-serialisable counts: records, by kind, by topic, distinct keys, planted cases."""
    kinds = Counter(r.kind for r in feed.records)
    topics = Counter(r.topic for r in feed.records)
    return {
        "records": len(feed.records),
        "kinds": dict(sorted(kinds.items())),
        "topics": dict(sorted(topics.items())),
        "patients": len({r.key for r in feed.records if r.key is not None}),
        "planted": len(feed.planted),
        "planted_cases": [
            {
                "patient_id": c.patient_id,
                "analyte": c.analyte,
                "severity": c.severity,
                "variant": c.variant,
                "late_order": c.late_order,
            }
            for c in feed.planted
        ],
    }
