"""One message → parse → one database transaction (dedupe, store, evaluate, outbox) → outcome.

The same pipeline serves the Kafka consumer, ``replay`` and dead-letter reprocessing. It is
synchronous (SQLAlchemy sessions); the consumer runs it in a worker thread.

Contract:
- ``process`` never raises for a bad message: parse errors, units it cannot understand and
  processing errors are written to the dead-letter table and reported as ``DEAD_LETTER``.
- It raises ``DatabaseUnavailable`` when the database cannot be reached; nothing of the
  message was stored then, and the caller must retry it later (pause, never skip).
- A message whose sending facility + MSH-10 was processed before changes nothing
  (``DUPLICATE``); irrelevant messages (``IGNORED``) are not even recorded, because repeating
  them changes nothing either.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from alerts.catalog import DrugCatalog, LabCatalog, UnknownUnit
from alerts.model import RuleConfig
from alerts.notification import Notification
from alerts.planning import plan_notifications
from alerts.rules import evaluate_patient
from parsers import (
    Ignored,
    LabReport,
    ParseError,
    ParserConfig,
    PharmacyOrder,
    parse_message,
)
from service import store
from service.alerting import Delivery, apply_plans
from service.clock import Clock, MessageClock, WallClock
from service.db.engine import is_outage
from service.db.models import DeadLetter, Patient
from service.phi import patient_hash

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    STORED = "stored"
    IGNORED = "ignored"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"


class DatabaseUnavailable(Exception):
    """The database could not be reached; the message was not stored and must be retried."""


@dataclass(frozen=True)
class Incoming:
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
    error_class: str = ""  # parse | unit | processing (dead letters)
    evaluated: bool = False
    notifications: list[Notification] = field(default_factory=list)


@dataclass(frozen=True)
class Clinical:
    """Everything the pure core needs, built once from settings (service.bootstrap)."""

    drugs: DrugCatalog
    labs: LabCatalog
    rules: RuleConfig
    parser: ParserConfig
    history_days: int


class _Duplicate(Exception):
    pass


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        clinical: Clinical,
        delivery: Delivery,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.clinical = clinical
        self.delivery = delivery
        self.clock = clock or WallClock()
        self.wall_clock = wall_clock or WallClock()

    def process_many(self, items: Sequence[Incoming]) -> list[Processed]:
        """Process in order. On DatabaseUnavailable, ``exc.args[1]`` holds the done results."""
        done: list[Processed] = []
        for item in items:
            try:
                done.append(self.process(item))
            except DatabaseUnavailable as exc:
                raise DatabaseUnavailable(str(exc), done) from exc
        return done

    def process(self, item: Incoming) -> Processed:
        try:
            parsed = parse_message(item.raw, self.clinical.parser)
        except ParseError as exc:
            return self._dead_letter(item, "parse", str(exc), sniff_control_id(item.raw))
        header = parsed.header
        if isinstance(self.clock, MessageClock):
            self.clock.advance(header.message_time)
        if isinstance(parsed, Ignored):
            return Processed(Outcome.IGNORED, header.message_type, header.control_id, parsed.reason)
        try:
            return self._store(parsed)
        except _Duplicate:
            return Processed(Outcome.DUPLICATE, header.message_type, header.control_id)
        except UnknownUnit as exc:
            return self._dead_letter(item, "unit", str(exc), header.control_id)
        except SQLAlchemyError as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(type(exc).__name__) from exc
            return self._dead_letter(item, "processing", _describe(exc), header.control_id)
        except Exception as exc:  # a bug must not stop the stream: keep the message, go on
            log.exception(
                "processing failed",
                extra={"control_id": header.control_id, "error": type(exc).__name__},
            )
            return self._dead_letter(item, "processing", _describe(exc), header.control_id)

    # -- the transaction ------------------------------------------------------------------

    def _store(self, parsed: LabReport | PharmacyOrder) -> Processed:
        header = parsed.header
        now = self.clock.now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            if not store.claim_message(session, header, now):
                raise _Duplicate
            patient = store.lock_patient(session, parsed.patient, now)
            if isinstance(parsed, LabReport):
                evaluate = self._store_results(session, patient, parsed, now)
            else:
                evaluate = self._store_order(session, patient, parsed)
            notifications = self._evaluate(session, patient, now) if evaluate else []
        for notification in notifications:
            log.info(
                "notification queued",
                extra={
                    "control_id": header.control_id,
                    "patient": patient_hash(patient.patient_id),
                    "event": notification.event,
                    "severity": notification.severity,
                    "dedup_key": notification.dedup_key,
                },
            )
        return Processed(
            Outcome.STORED,
            header.message_type,
            header.control_id,
            evaluated=evaluate,
            notifications=notifications,
        )

    def _store_results(
        self, session: Session, patient: Patient, report: LabReport, now: datetime
    ) -> bool:
        labs = self.clinical.labs
        for result in report.results:
            # CLINICAL.md: dead-letter a relevant result whose unit cannot be understood
            # rather than guess. Raising here rolls the whole message back.
            if result.analyte in store.EVALUATED_ANALYTES and result.value is not None:
                if not labs.understands(result.analyte, result.unit):
                    raise UnknownUnit(
                        f"unit {result.unit[:32]!r} not understood for {result.analyte} "
                        f"(OBX set id {result.set_id[:8]})"
                    )
        store.save_results(session, patient.patient_id, report.results, report.header, now)
        relevant = any(r.analyte in store.EVALUATED_ANALYTES for r in report.results)
        return relevant and patient.has_iron and patient.has_antiresorptive

    def _store_order(self, session: Session, patient: Patient, message: PharmacyOrder) -> bool:
        order = message.order
        drug = self.clinical.drugs.get(order.drug) if order.drug else None
        if drug is None:
            return False
        store.save_order(session, patient, order, drug.drug_class, message.header)
        return (
            drug.drug_class in ("iv_iron", "antiresorptive")
            and patient.has_iron
            and patient.has_antiresorptive
        )

    def _evaluate(self, session: Session, patient: Patient, now: datetime) -> list[Notification]:
        clinical = self.clinical
        session.flush()
        history = store.load_history(session, patient, now, clinical.history_days)
        findings = evaluate_patient(history, clinical.drugs, clinical.labs, clinical.rules, now)
        alerts = store.load_alerts(session, patient.patient_id)
        previous = {key: store.alert_state(row) for key, row in alerts.items()}
        plans = plan_notifications(previous, findings)
        if not plans:
            return []
        return apply_plans(
            session,
            plans,
            alerts,
            patient.location,
            clinical.drugs,
            self.delivery,
            now,
            self.wall_clock.now(),
        )

    # -- dead letters -------------------------------------------------------------------

    def _dead_letter(
        self, item: Incoming, error_class: str, reason: str, control_id: str
    ) -> Processed:
        if item.source == "kafka":
            location = f"kafka:{item.topic}:{item.partition}:{item.offset}"
        else:
            location = f"{item.source}:{hashlib.sha256(item.raw).hexdigest()}"
        now = self.wall_clock.now()
        try:
            with Session(self.engine) as session, session.begin():
                statement = (
                    store._insert(session, DeadLetter)
                    .values(
                        location_key=location[:255],
                        source=item.source,
                        topic=item.topic[:255],
                        partition=item.partition,
                        offset=item.offset,
                        control_id=control_id[:199],
                        reason=reason[:2000],
                        error_class=error_class,
                        raw=item.raw,
                        created_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["location_key"])
                )
                session.execute(statement)
        except SQLAlchemyError as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(type(exc).__name__) from exc
            raise
        log.warning(
            "message dead-lettered",
            extra={"control_id": control_id, "error_class": error_class, "reason": reason},
        )
        return Processed(
            Outcome.DEAD_LETTER, control_id=control_id, reason=reason, error_class=error_class
        )


def sniff_control_id(raw: bytes) -> str:
    """MSH-10 of a message that failed to parse, best effort, for logs (never raises)."""
    try:
        text = raw.lstrip(b"\x0b\r\n ").decode("latin-1")
        if not text.startswith("MSH") or len(text) < 4:
            return ""
        first = text.replace("\n", "\r").split("\r", 1)[0]
        fields = first.split(text[3])
        return fields[9][:64] if len(fields) > 9 and fields[9].isprintable() else ""
    except Exception:
        return ""


def _describe(exc: BaseException) -> str:
    # Stored in the dead-letter table (inside the database, where PHI may live) for the
    # engineer who fixes it; logs get only the class name.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500]
