"""One message → parse → one database transaction (dedupe, store, evaluate, outbox) → outcome.

The same pipeline serves the Kafka consumer, ``replay`` and dead-letter reprocessing. It is
synchronous (SQLAlchemy sessions) and in two halves: ``stage_batch`` (pure: parse, checks, row
preparation) and ``store_batch`` (the transaction). The consumer runs the first on its event
loop and the second in a worker thread, so that parsing a batch overlaps storing the previous.

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
from typing import Any, NamedTuple

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from alerts.advisory import DEFAULT_LOOKBACK_DAYS
from alerts.catalog import DrugCatalog, LabCatalog
from alerts.model import RULE_INTERACTION, AlertState, RuleConfig
from alerts.monitoring import MonitoringConfig
from alerts.notification import Notification
from alerts.planning import plan_notifications
from alerts.rules import evaluate_patient
from alerts.trends import (
    DEFAULT_DROP_FRACTION,
    RULE_TREND,
    plan_trend_notifications,
    trend_findings,
)
from parsers import (
    Ignored,
    LabReport,
    ParseError,
    ParserConfig,
    PatientMerge,
    PharmacyOrder,
    parse_message,
)
from parsers import Patient as PatientEvent
from service import merges as merges_module
from service import prevention, store
from service.alerting import Delivery, apply_plans
from service.clock import Clock, MessageClock, WallClock
from service.db.engine import is_outage
from service.db.models import Alert
from service.patients import PatientRecord, lock_patients, mark_exposure, save_patients
from service.phi import patient_hash

log = logging.getLogger(__name__)


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
    trend_drop_fraction: float = DEFAULT_DROP_FRACTION
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    advisory_lookback_days: int = DEFAULT_LOOKBACK_DAYS  # issue #4: "in the last 30 days"
    advisory_late_days: int | None = None  # None: rules.backfill_days (CLINICAL.md, 7 days)


@dataclass
class Staged:
    """One message of a batch after the pure steps (parse, unit check), before the database."""

    item: Incoming
    now: datetime
    parsed: LabReport | PharmacyOrder | PatientMerge | None = None
    drug_class: str = ""
    rows: list[store.ResultRow] = field(default_factory=list)  # a report's rows, prepared here
    result: Processed | None = None  # decided without the database (ignored, dead letter)
    dead_letter: dict[str, Any] | None = None  # row for the dead-letter table


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

    def process(self, item: Incoming) -> Processed:
        return self.process_batch([item])[0]

    def process_batch(self, items: Sequence[Incoming]) -> list[Processed]:
        """Process ``items`` in one transaction; results in the same order.

        When the batch fails for a reason other than an outage (a constraint the data broke, a
        bug in evaluation), it is processed again message by message so that one poison
        message is dead-lettered alone and the others are stored. Raises DatabaseUnavailable
        (nothing of the batch stored) when the database cannot be reached.
        """
        return self.store_batch(self.stage_batch(items))

    def stage_batch(self, items: Sequence[Incoming]) -> list[Staged]:
        """The steps that need no database (parse, unit check), so that a caller can run them
        for the next batch while the previous one is being stored."""
        return [self._stage(item) for item in items]

    def store_batch(self, staged: list[Staged]) -> list[Processed]:
        """The transaction of ``process_batch`` for messages staged by ``stage_batch``, in the
        order they were staged."""
        try:
            self._commit(staged)
        except SQLAlchemyError as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(type(exc).__name__) from exc
            failure: Exception = exc
        except Exception as exc:  # a bug must not stop the stream: keep the message, go on
            failure = exc
        else:
            results = [s.result for s in staged]
            self._log(staged)
            return results  # type: ignore[return-value]
        if len(staged) > 1:
            log.warning(
                "batch failed; retrying message by message",
                extra={"error": type(failure).__name__, "messages": len(staged)},
            )
            return [result for s in staged for result in self.process_batch([s.item])]
        return [self._dead_letter_alone(staged[0], failure)]

    # -- pure steps -----------------------------------------------------------------------

    def _stage(self, item: Incoming) -> Staged:
        try:
            parsed = parse_message(item.raw, self.clinical.parser)
        except ParseError as exc:
            control_id = sniff_control_id(item.raw)
            return self._reject(Staged(item, self.clock.now()), "parse", str(exc), control_id)
        header = parsed.header
        if isinstance(self.clock, MessageClock):
            self.clock.advance(header.message_time)
        staged = Staged(item, self.clock.now())
        if isinstance(parsed, Ignored):
            staged.result = Processed(
                Outcome.IGNORED, header.message_type, header.control_id, parsed.reason
            )
            return staged
        if isinstance(parsed, LabReport):
            problem = self._unit_problem(parsed)
            if problem:
                return self._reject(staged, "unit", problem, header.control_id)
            staged.rows = store.result_rows(parsed.patient.id, parsed.results, header, staged.now)
        elif isinstance(parsed, PatientMerge):
            pass
        else:
            drug = self.clinical.drugs.get(parsed.order.drug) if parsed.order.drug else None
            if drug is None:
                staged.result = Processed(
                    Outcome.IGNORED, header.message_type, header.control_id, "drug not in catalog"
                )
                return staged
            staged.drug_class = drug.drug_class
        staged.parsed = parsed
        return staged

    def _unit_problem(self, report: LabReport) -> str:
        # CLINICAL.md: dead-letter a relevant result whose unit cannot be understood rather
        # than guess. The whole message goes, so nothing of it is half-stored.
        labs = self.clinical.labs
        for result in report.results:
            if (
                result.analyte in store.EVALUATED_ANALYTES
                and result.value is not None
                and not labs.understands(result.analyte, result.unit)
            ):
                # The reason names where, never what: a shifted field can put a patient's
                # name into OBX-6. The unit itself is in the stored message (`dlq show`).
                return (
                    f"unit not understood for {result.analyte} "
                    f"(OBX-6 of OBX set id {result.set_id[:8]})"
                )
        return ""

    def _reject(self, staged: Staged, error_class: str, reason: str, control_id: str) -> Staged:
        item = staged.item
        if item.source == "kafka":
            location = f"kafka:{item.topic}:{item.partition}:{item.offset}"
        else:
            location = f"{item.source}:{hashlib.sha256(item.raw).hexdigest()}"
        staged.dead_letter = {
            "location_key": location[:255],
            "source": item.source,
            "topic": item.topic[:255],
            "partition": item.partition,
            "offset": item.offset,
            "control_id": control_id[:199],
            "reason": reason[:2000],
            "error_class": error_class,
            "raw": item.raw,
            "status": "new",
            "created_at": self.wall_clock.now(),
        }
        staged.result = Processed(
            Outcome.DEAD_LETTER, control_id=control_id, reason=reason, error_class=error_class
        )
        return staged

    # -- the transaction ------------------------------------------------------------------

    def _commit(self, staged: list[Staged]) -> None:
        wall = self.wall_clock.now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            fresh = self._claim(session, staged, wall)
            self._follow_aliases(session, fresh)
            events = {_patient(s.parsed).id: _patient(s.parsed) for s in fresh if s.parsed}
            patients = lock_patients(session, events, wall)
            merges: list[Staged] = []
            results: list[store.ResultRow] = []
            orders: list[dict[str, Any]] = []
            candidates: dict[str, list[Staged]] = {}  # patient → its messages that may matter
            for s in fresh:
                parsed = s.parsed
                assert parsed is not None
                patient = patients[_patient(parsed).id]
                if isinstance(parsed, PatientMerge):
                    merges.append(s)
                    matters = False
                elif isinstance(parsed, LabReport):
                    rows = s.rows
                    if parsed.patient.id != rows[0].patient_id:  # refiled under a survivor
                        rows = store.result_rows(
                            patient.patient_id, parsed.results, parsed.header, s.now
                        )
                    results += rows
                    matters = any(r.analyte in store.EVALUATED_ANALYTES for r in parsed.results)
                else:
                    orders.append(
                        store.order_row(
                            patient.patient_id, parsed.order, s.drug_class, parsed.header
                        )
                    )
                    mark_exposure(patient, s.drug_class)
                    matters = s.drug_class in ("iv_iron", "antiresorptive")
                s.result = Processed(Outcome.STORED, parsed.header.message_type,
                                     parsed.header.control_id)  # fmt: skip
                if matters:
                    candidates.setdefault(patient.patient_id, []).append(s)
            store.upsert_results(session, results)
            store.insert_orders(session, orders)
            # Saved before merges: a merge reads the prior patient's flags from the database.
            save_patients(session, patients.values(), wall)
            for s in merges:
                merge = s.parsed
                assert isinstance(merge, PatientMerge)
                survivor = patients[merge.surviving.id]
                if merges_module.merge_patients(
                    session, survivor, merge.prior_ids, merge.header.control_id, wall
                ):
                    # Re-evaluate: the merged history may hold an interaction neither had.
                    candidates.setdefault(survivor.patient_id, []).append(s)
            store.insert_dead_letters(
                session, [s.dead_letter for s in staged if s.dead_letter is not None]
            )
            save_patients(session, patients.values(), wall)
            session.flush()
            for patient_id in sorted(candidates):
                patient = patients[patient_id]
                if patient.has_iron and patient.has_antiresorptive:
                    self._evaluate_in_order(session, patient, candidates[patient_id])

    def _follow_aliases(self, session: Session, fresh: list[Staged]) -> None:
        """File messages sent under a merged-away identifier under the surviving patient."""
        aliases = merges_module.resolve_aliases(
            session, {_patient(s.parsed).id for s in fresh if s.parsed}
        )
        for s in fresh:
            if s.parsed is not None and _patient(s.parsed).id in aliases:
                s.parsed = _refiled(s.parsed, aliases[_patient(s.parsed).id])

    def _claim(self, session: Session, staged: list[Staged], now: datetime) -> list[Staged]:
        """Mark messages processed; return those new (not seen before, not repeated here)."""
        first: dict[tuple[str, str], Staged] = {}
        for s in staged:
            if s.parsed is None:
                continue
            header = s.parsed.header
            key = (header.sending_facility, header.control_id)
            if key in first:
                s.result = Processed(Outcome.DUPLICATE, header.message_type, header.control_id)
            else:
                first[key] = s
        claimed = store.claim_messages(
            session, [s.parsed.header for s in first.values() if s.parsed], now
        )
        fresh = []
        for key, s in first.items():
            if key in claimed:
                fresh.append(s)
            else:
                header = s.parsed.header  # type: ignore[union-attr]
                s.result = Processed(Outcome.DUPLICATE, header.message_type, header.control_id)
        return fresh

    def _evaluate_in_order(
        self, session: Session, patient: PatientRecord, messages: list[Staged]
    ) -> None:
        """Evaluate after each of the patient's messages, seeing only what came before it.

        Only patients with both an iron and an antiresorptive order get here, so the extra
        queries are few; in exchange a batch decides exactly as one-by-one processing would
        (a worse result later in the batch is an ``update``, not a different first alert).
        """
        alerts = store.load_alerts(session, patient.patient_id)
        later = [s.parsed.header.control_id for s in messages if s.parsed]
        for index, staged in enumerate(messages):
            hidden = frozenset(later[index + 1 :])
            assert staged.result is not None
            staged.result.evaluated = True
            staged.result.notifications = self._evaluate(
                session, patient, staged.now, alerts, hidden
            )

    def _evaluate(
        self,
        session: Session,
        patient: PatientRecord,
        now: datetime,
        alerts: dict[str, Alert],
        hidden: frozenset[str],
    ) -> list[Notification]:
        clinical = self.clinical
        history = store.load_history(session, patient, now, clinical.history_days, hidden)
        findings = evaluate_patient(history, clinical.drugs, clinical.labs, clinical.rules, now)
        trends = trend_findings(
            history,
            clinical.drugs,
            clinical.labs,
            clinical.rules,
            now,
            drop_fraction=clinical.trend_drop_fraction,
            baseline_days_before=clinical.monitoring.baseline_days_before,
        )

        def states(rule: str) -> dict[str, AlertState]:
            return {k: store.alert_state(r) for k, r in alerts.items() if r.rule == rule}

        # Order-time advisory (issue #4): once per at-risk iron episode, in this transaction.
        advised = prevention.queue_advisories(
            session, patient, history, clinical, self.delivery, now, self.wall_clock.now()
        )
        plans = plan_notifications(states(RULE_INTERACTION), findings)
        plans += plan_trend_notifications(states(RULE_TREND), trends, findings)
        if not plans:
            return advised
        return advised + apply_plans(
            session,
            plans,
            alerts,
            patient.location,
            clinical.drugs,
            self.delivery,
            now,
            self.wall_clock.now(),
        )

    # -- after the transaction ----------------------------------------------------------

    def _dead_letter_alone(self, staged: Staged, failure: Exception) -> Processed:
        """Store one message that failed processing in the dead-letter table."""
        header = staged.parsed.header if staged.parsed else None
        control_id = header.control_id if header else sniff_control_id(staged.item.raw)
        log.error(
            "processing failed",
            extra={"control_id": control_id, "error": type(failure).__name__},
        )
        self._reject(staged, "processing", _describe(failure), control_id)
        try:
            with Session(self.engine) as session, session.begin():
                store.insert_dead_letters(session, [staged.dead_letter])  # type: ignore[list-item]
        except SQLAlchemyError as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(type(exc).__name__) from exc
            raise
        self._log([staged])
        assert staged.result is not None
        return staged.result

    def _log(self, staged: list[Staged]) -> None:
        for s in staged:
            result = s.result
            if result is None:
                continue
            if result.outcome is Outcome.DEAD_LETTER:
                log.warning(
                    "message dead-lettered",
                    extra={
                        "control_id": result.control_id,
                        "error_class": result.error_class,
                        "reason": result.reason,
                    },
                )
            for notification in result.notifications:
                log.info(
                    "notification queued",
                    extra={
                        "control_id": result.control_id,
                        "patient": patient_hash(notification.patient_id),
                        "event": notification.event,
                        "severity": notification.severity,
                        "dedup_key": notification.dedup_key,
                    },
                )


def _patient(parsed: LabReport | PharmacyOrder | PatientMerge) -> PatientEvent:
    return parsed.surviving if isinstance(parsed, PatientMerge) else parsed.patient


def _refiled(
    parsed: LabReport | PharmacyOrder | PatientMerge, patient_id: str
) -> LabReport | PharmacyOrder | PatientMerge:
    """The same message filed under another patient id (a merged-away identifier's survivor)."""
    patient = _patient(parsed)._replace(id=patient_id)
    if isinstance(parsed, PatientMerge):
        return parsed._replace(surviving=patient)
    return parsed._replace(patient=patient)


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
