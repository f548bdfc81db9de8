"""The tables. One class per table; relationships are by key, queried explicitly in store.py.

Times are UTC (see ``UTCDateTime``). Patient identifiers are stored because the database is
the clinical record of what LabSentinel saw; they never reach logs or metric labels.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from service.db.types import UTCDateTime


def _utc(**kwargs: object) -> object:
    return Field(sa_type=UTCDateTime, **kwargs)  # type: ignore[call-overload]


def new_public_id() -> str:
    """A random, opaque alert id (22 URL-safe characters, 128 bits): it names an alert
    outside the database (ack links, pages, webhook headers) and, unlike the dedup key, no
    patient identifier can be guessed back from it."""
    return secrets.token_urlsafe(16)


class Patient(SQLModel, table=True):
    __tablename__ = "patients"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(max_length=64, unique=True)
    authority: str = Field(default="", max_length=64)
    location: str = Field(default="", max_length=128)
    facility: str = Field(default="", max_length=64)
    service: str = Field(default="", max_length=64)
    # Set when a catalogued order is stored: evaluation is skipped unless both are true.
    has_iron: bool = False
    has_antiresorptive: bool = False
    updated_at: datetime = _utc()  # type: ignore[assignment]


class ProcessedMessage(SQLModel, table=True):
    """Sending facility + MSH-10 of every message whose effects were stored."""

    __tablename__ = "processed_messages"

    sending_facility: str = Field(max_length=128, primary_key=True)
    control_id: str = Field(max_length=199, primary_key=True)
    message_type: str = Field(default="", max_length=16)
    processed_at: datetime = _utc()  # type: ignore[assignment]


class LabResultRow(SQLModel, table=True):
    """The current version of each result; a correction updates the row of its result_key.

    Keyed by what identifies it, without a surrogate id: every lookup is by patient, and each
    extra index costs every one of the millions of rows written (migration 0004).
    """

    __tablename__ = "lab_results"

    patient_id: str = Field(max_length=64, primary_key=True)
    result_key: str = Field(max_length=255, primary_key=True)
    analyte: str = Field(max_length=32)
    code: str = Field(default="", max_length=64)
    value: float | None = None
    comparator: str = Field(default="", max_length=2)
    value_text: str = Field(default="", max_length=255)
    unit: str = Field(default="", max_length=32)
    reference_range: str = Field(default="", max_length=64)
    abnormal_flags: str = Field(default="", max_length=32)
    status: str = Field(default="", max_length=2)
    observed_at: datetime = _utc()  # type: ignore[assignment]
    received_at: datetime = _utc()  # type: ignore[assignment]
    message_time: datetime = _utc()  # type: ignore[assignment]
    control_id: str = Field(default="", max_length=199)


class MedicationOrderRow(SQLModel, table=True):
    """Every message about a catalogued order (NW, DC, CA, ...), replayed by the rules."""

    __tablename__ = "medication_orders"
    __table_args__ = (
        UniqueConstraint("patient_id", "control_id", "order_key"),
        Index("ix_medication_orders_patient_dose", "patient_id", "dose_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(max_length=64)
    order_key: str = Field(max_length=199)
    order_control: str = Field(max_length=4)
    drug: str = Field(max_length=64)
    drug_class: str = Field(max_length=32)
    route: str = Field(default="", max_length=32)
    dose_at: datetime = _utc()  # type: ignore[assignment]
    end_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
    message_time: datetime = _utc()  # type: ignore[assignment]
    ordering_provider: str = Field(default="", max_length=64)
    administered: bool = False
    completion_status: str = Field(default="", max_length=2)  # RXA-20: NA/RE open no window
    control_id: str = Field(default="", max_length=199)


class Alert(SQLModel, table=True):
    """One alert per dedup key (patient, rule, analyte, iron episode) and its current state."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_patient_status", "patient_id", "status"),
        Index("ix_alerts_escalation_state", "escalation_state"),
        Index("ix_alerts_public_id", "public_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Internal: hashes the patient id, so it never leaves the database (public_id does).
    dedup_key: str = Field(max_length=64, unique=True)
    public_id: str = Field(default_factory=new_public_id, max_length=32)
    rule: str = Field(max_length=64)
    patient_id: str = Field(max_length=64)
    location: str = Field(default="", max_length=128)
    analyte: str = Field(max_length=32)
    severity: str = Field(max_length=16)
    status: str = Field(max_length=16)  # open | worklist | resolved
    value: float | None = None
    comparator: str = Field(default="", max_length=2)
    unit: str = Field(default="", max_length=32)
    value_canonical: float = 0.0
    reference_range: str = Field(default="", max_length=64)
    observed_at: datetime = _utc()  # type: ignore[assignment]
    result_key: str = Field(default="", max_length=255)
    iron_drug: str = Field(default="", max_length=64)
    iron_dose_at: datetime = _utc()  # type: ignore[assignment]
    episode_start: datetime = _utc()  # type: ignore[assignment]
    days_since_iron: int = 0
    antiresorptive_drug: str = Field(default="", max_length=64)
    antiresorptive_dose_at: datetime = _utc()  # type: ignore[assignment]
    double_trouble: bool = False
    backfilled: bool = False
    notification_seq: int = 0
    created_at: datetime = _utc()  # type: ignore[assignment]
    updated_at: datetime = _utc()  # type: ignore[assignment]
    resolved_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
    acked_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
    acked_by: str = Field(default="", max_length=128)
    ack_action: str = Field(default="", max_length=64)
    ack_note: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # Paging: who is paged and how far escalation went. Kept on the alert row so that a
    # restart resumes where it was; the state is a pure function's input (alerts.escalation).
    team: str = Field(default="", max_length=64)
    paged_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
    escalation_tier: int = 1
    escalation_round: int = 0
    escalation_step: int = 0
    # "" (never paged) | active | acked | stopped | exhausted
    escalation_state: str = Field(default="", max_length=16)
    stop_reason: str = Field(default="", max_length=64)
    corrective_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
    corrective_drug: str = Field(default="", max_length=64)
    silence_id: int | None = None
    delivery_failed_at: datetime | None = _utc(  # type: ignore[assignment]
        default=None, nullable=True
    )


class NotificationRow(SQLModel, table=True):
    """Every notification decided for an alert, with the exact JSON the transports received."""

    __tablename__ = "notifications"

    id: int | None = Field(default=None, primary_key=True)
    notification_id: str = Field(max_length=64, unique=True)
    alert_id: int | None = Field(default=None, index=True)
    dedup_key: str = Field(max_length=64, index=True)
    event: str = Field(max_length=16)
    severity: str = Field(max_length=16)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _utc()  # type: ignore[assignment]


class OutboxRow(SQLModel, table=True):
    """One delivery of one notification to one recipient over one channel."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("notification_id", "channel", "recipient"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notification_id: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    recipient: str = Field(max_length=128)
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = _utc()  # type: ignore[assignment]
    deadline_at: datetime = _utc()  # type: ignore[assignment]
    lease_until: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
    lease_owner: str = Field(default="", max_length=64)
    last_error: str = Field(default="", max_length=255)
    created_at: datetime = _utc()  # type: ignore[assignment]
    sent_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
    # A delivery queued because another one failed for good (the fallback route); a failing
    # fallback delivery has no fallback of its own.
    fallback: bool = False


class DeliveryAttempt(SQLModel, table=True):
    """History: every attempt at an outbox row and how it ended."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    outbox_id: int = Field(index=True)
    notification_id: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=64)
    attempted_at: datetime = _utc()  # type: ignore[assignment]
    outcome: str = Field(max_length=16)  # delivered | retryable | final
    detail: str = Field(default="", max_length=255)
    latency_ms: float = 0.0


class DeadLetter(SQLModel, table=True):
    """A message that could not be parsed or processed, kept whole for inspection and replay.

    ``raw`` is the message as received (it may hold PHI: it lives only in the database, never
    in logs). ``location_key`` makes a redelivered poison message one row, not many.
    """

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, primary_key=True)
    location_key: str = Field(max_length=255, unique=True)
    source: str = Field(max_length=16)  # kafka | replay
    topic: str = Field(default="", max_length=255)
    partition: int | None = None
    # Kafka offsets are 64-bit; SQLite's INTEGER already is.
    offset: int | None = Field(default=None, sa_type=BigInteger().with_variant(Integer(), "sqlite"))
    control_id: str = Field(default="", max_length=199)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    error_class: str = Field(max_length=32)  # parse | unit | value | size | processing
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    status: str = Field(default="new", max_length=16)  # new | reprocessed | dead
    created_at: datetime = _utc()  # type: ignore[assignment]
    reprocessed_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]


class AlertEvent(SQLModel, table=True):
    """History of an alert beyond its notifications and attempts: acks, escalations, stops,
    silences, resolutions, failed deliveries and fallbacks (``service.notify.history`` merges
    them all)."""

    __tablename__ = "alert_events"

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(index=True)
    kind: str = Field(max_length=32)
    at: datetime = _utc()  # type: ignore[assignment]
    actor: str = Field(default="", max_length=128)
    notification_id: str = Field(default="", max_length=64)
    detail: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))


class Silence(SQLModel, table=True):
    """Mutes pages matching every given field (empty = any); the alert is still recorded."""

    __tablename__ = "silences"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(default="", max_length=64)
    unit: str = Field(default="", max_length=64)  # point of care (first part of the location)
    rule: str = Field(default="", max_length=64)
    author: str = Field(max_length=128)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    created_at: datetime = _utc()  # type: ignore[assignment]
    expires_at: datetime = _utc()  # type: ignore[assignment]
    expired_at: datetime | None = _utc(default=None, nullable=True)  # type: ignore[assignment]
