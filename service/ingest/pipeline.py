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
- One unusable item never hides another: a relevant result whose value or unit cannot be used,
  or an order group or administration the parser could not read, is dead-lettered on its own
  (one row per item, its location key suffixed with the item's position) and the rest of the
  message is stored. Only a message with nothing usable left is a ``DEAD_LETTER`` as a whole.
- Nothing about a message's bytes can stop the stream: a record over ``max_message_bytes`` is
  dead-lettered before it is decoded, and a dead letter that the database refuses is stored
  again in a form that cannot fail on the message (raw bytes, a cleaned control id, a fixed
  reason). Only an unreachable database stops a batch, as ``DatabaseUnavailable``.
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

from alerts.identity import patient_key
from alerts.model import RULE_INTERACTION, AlertState
from alerts.notification import Notification
from alerts.planning import plan_notifications
from alerts.rules import evaluate_patient
from alerts.trends import (
    RULE_TREND,
    plan_trend_notifications,
    trend_findings,
)
from parsers import (
    Ignored,
    LabReport,
    ParseError,
    PatientMerge,
    PharmacyOrder,
    Rejected,
    parse_message,
)
from parsers import Patient as PatientEvent
from service.db.engine import database_reachable, is_outage
from service.db.models import Alert
from service.db.patients import PatientRecord, lock_patients, mark_exposure, save_patients
from service.ingest import merges as merges_module
from service.ingest import store
from service.notify import prevention
from service.notify.alerting import Delivery, apply_plans
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock, MessageClock, WallClock
from service.runtime.logs import describe_exception
from service.runtime.phi import patient_hash

log = logging.getLogger(__name__)

# Far above any lab result or pharmacy order (a report with an embedded PDF is a few MB), and
# four times Kafka's default message.max.bytes (1 MB): only a runaway record is refused.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# The patient key is stored in columns of this width (migration 0005); a longer identifier
# is refused rather than cut, since a cut key could be another patient's.
MAX_PATIENT_KEY = 160
# Widths of the de-duplication key (processed_messages): a longer MSH-10 or MSH-4 is refused
# alike on every database, rather than cut (two messages could then share a key).
MAX_CONTROL_ID = 199
MAX_FACILITY = 128
# OBX-11 statuses that may come without a number: pending (I), a retraction (D wrong result,
# W wrong patient, X cannot be obtained). U "changed to final" with an empty OBX-5 keeps the
# stored value (CLINICAL.md "Edge semantics"); U with text that is no number is unusable.
_VALUELESS_STATUSES = frozenset({"I", "D", "W", "X"})


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


@dataclass
class Staged:
    """One message of a batch after the pure steps (parse, unit check), before the database."""

    item: Incoming
    now: datetime
    parsed: LabReport | PharmacyOrder | PatientMerge | None = None
    patient: str = ""  # the patient key (identifier + authority), after alias resolution
    drug_classes: tuple[str, ...] = ()  # of each of a PharmacyOrder's orders
    rows: list[store.ResultRow] = field(default_factory=list)  # a report's rows, prepared here
    result: Processed | None = None  # decided without the database (ignored, dead letter)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # dead-letter table rows


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        clinical: Clinical,
        delivery: Delivery,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.engine = engine
        self.clinical = clinical
        self.delivery = delivery
        self.clock = clock or WallClock()
        self.wall_clock = wall_clock or WallClock()
        self.max_message_bytes = max_message_bytes

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
        return [self._stage_safely(item) for item in items]

    def _stage_safely(self, item: Incoming) -> Staged:
        try:
            return self._stage(item)
        except Exception as exc:  # a bug met by one message must not take the batch with it
            staged = Staged(item, self.clock.now())
            control_id = sniff_control_id(item.raw)
            log.error(
                "staging failed",
                extra={"control_id": _printable(control_id), "error": type(exc).__name__},
            )
            return self._reject(staged, "processing", describe_exception(exc), control_id)

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
        if len(item.raw) > self.max_message_bytes:
            # Refused before decoding: a runaway record must not cost its size again in text.
            reason = f"record of {len(item.raw)} bytes exceeds max_message_bytes"
            control_id = sniff_control_id(item.raw[:4096])
            return self._reject(Staged(item, self.clock.now()), "size", reason, control_id)
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
        patient = _patient(parsed)
        staged.patient = patient_key(patient.id, patient.authority)
        if len(staged.patient) > MAX_PATIENT_KEY:
            reason = f"patient identifier longer than {MAX_PATIENT_KEY} characters (PID-3)"
            return self._reject(staged, "parse", reason, header.control_id)
        if len(header.control_id) > MAX_CONTROL_ID or len(header.sending_facility) > MAX_FACILITY:
            reason = "MSH-10 or MSH-4 longer than the de-duplication key allows"
            return self._reject(staged, "parse", reason, header.control_id[:MAX_CONTROL_ID])
        staged.parsed = parsed  # names the message in the rows of its items' dead letters
        if isinstance(parsed, LabReport):
            usable = self._usable_results(staged, parsed)
            if not usable:
                return self._reject_whole(staged, parsed)
            if len(usable) < len(parsed.results):
                parsed = parsed._replace(results=tuple(usable))
            staged.rows = store.result_rows(staged.patient, parsed.results, header, staged.now)
        elif isinstance(parsed, PharmacyOrder):
            for rejected in parsed.rejected:
                self._reject_item(staged, "parse", _rejected_reason(rejected), rejected.segment)
            drugs = self.clinical.drugs
            kept = [(o, drugs.get(o.drug)) for o in parsed.orders if o.drug]
            known = [(o, d) for o, d in kept if d is not None]
            if not known:
                if staged.dead_letters:
                    return self._reject_whole(staged, parsed)
                staged.parsed = None
                staged.result = Processed(
                    Outcome.IGNORED, header.message_type, header.control_id, "drug not in catalog"
                )
                return staged
            parsed = parsed._replace(orders=tuple(o for o, _ in known))
            staged.drug_classes = tuple(d.drug_class for _, d in known)
        staged.parsed = parsed
        return staged

    def _usable_results(self, staged: Staged, report: LabReport) -> list[Any]:
        """The report's results that can be stored; each other one is dead-lettered alone.

        CLINICAL.md: a relevant result whose unit or value cannot be used is dead-lettered
        with a reason rather than guessed at or stored empty, and never takes the message's
        other results with it.
        """
        for rejected in report.rejected:
            self._reject_item(staged, "parse", _rejected_reason(rejected), rejected.segment)
        labs = self.clinical.labs
        usable = []
        for result in report.results:
            if result.analyte not in store.EVALUATED_ANALYTES:
                usable.append(result)
                continue
            where = result.position or f"OBX set id {result.set_id[:8]}"
            # The reasons name where, never what: a shifted field can put a patient's name
            # into OBX-5 or OBX-6. The value itself is in the stored message (`dlq show`).
            if result.value is None:
                valueless = result.status in _VALUELESS_STATUSES or (
                    result.status == "U" and not result.value_text.strip()
                )
                if valueless:
                    usable.append(result)
                    continue
                what = "not a number" if result.value_text.strip() else "empty"
                reason = f"{result.analyte} value {what} (OBX-5 of {where})"
                self._reject_item(staged, "value", reason, where)
            elif not labs.understands(result.analyte, result.unit):
                reason = f"unit not understood for {result.analyte} (OBX-6 of {where})"
                self._reject_item(staged, "unit", reason, where)
            else:
                usable.append(result)
        return usable

    def _reject_item(self, staged: Staged, error_class: str, reason: str, where: str) -> None:
        staged.dead_letters.append(self._dead_letter_row(staged, error_class, reason, where))

    def _reject_whole(self, staged: Staged, parsed: LabReport | PharmacyOrder) -> Staged:
        """Nothing of the message is usable: it is one dead letter per unusable item."""
        header = parsed.header
        staged.parsed = None  # not claimed: a fixed sender may send it again
        classes = [row["error_class"] for row in staged.dead_letters]
        reasons = [row["reason"] for row in staged.dead_letters]
        staged.result = Processed(
            Outcome.DEAD_LETTER,
            header.message_type,
            header.control_id,
            "; ".join(reasons)[:2000],
            classes[0] if classes else "parse",
            item_dead_letters=tuple(classes[1:]),
        )
        return staged

    def _reject(self, staged: Staged, error_class: str, reason: str, control_id: str) -> Staged:
        staged.dead_letters = [self._dead_letter_row(staged, error_class, reason, "", control_id)]
        staged.result = Processed(
            Outcome.DEAD_LETTER, control_id=control_id, reason=reason, error_class=error_class
        )
        return staged

    def _dead_letter_row(
        self,
        staged: Staged,
        error_class: str,
        reason: str,
        where: str = "",
        control_id: str | None = None,
    ) -> dict[str, Any]:
        """A dead-letter table row for the message, or for one item of it (``where``)."""
        item = staged.item
        if item.source == "kafka":
            location = f"kafka:{item.topic}:{item.partition}:{item.offset}"
        else:
            location = f"{item.source}:{hashlib.sha256(item.raw).hexdigest()}"
        if where:
            location = f"{location}#{where}"
        if control_id is None:
            header = staged.parsed.header if staged.parsed else None
            control_id = header.control_id if header else sniff_control_id(item.raw)
        return {
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

    # -- the transaction ------------------------------------------------------------------

    def _commit(self, staged: list[Staged]) -> None:
        wall = self.wall_clock.now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            fresh = self._claim(session, staged, wall)
            self._follow_aliases(session, fresh)
            events = {s.patient: _patient(s.parsed) for s in fresh if s.parsed}
            patients = lock_patients(session, events, wall)
            merges: list[Staged] = []
            results: list[store.ResultRow] = []
            orders: list[dict[str, Any]] = []
            candidates: dict[str, list[Staged]] = {}  # patient → its messages that may matter
            for s in fresh:
                parsed = s.parsed
                assert parsed is not None
                patient = patients[s.patient]
                if isinstance(parsed, PatientMerge):
                    merges.append(s)
                    matters = False
                elif isinstance(parsed, LabReport):
                    rows = s.rows
                    if s.patient != rows[0].patient_id:  # refiled under a survivor
                        rows = store.result_rows(s.patient, parsed.results, parsed.header, s.now)
                    results += rows
                    matters = any(r.analyte in store.EVALUATED_ANALYTES for r in parsed.results)
                else:
                    pairs = zip(parsed.orders, s.drug_classes, strict=True)
                    for position, (order, drug_class) in enumerate(pairs, 1):
                        orders.append(
                            store.order_row(s.patient, order, drug_class, parsed.header, position)
                        )
                        mark_exposure(patient, drug_class)
                    matters = any(c in ("iv_iron", "antiresorptive") for c in s.drug_classes)
                s.result = Processed(
                    Outcome.STORED,
                    parsed.header.message_type,
                    parsed.header.control_id,
                    item_dead_letters=tuple(row["error_class"] for row in s.dead_letters),
                )
                if matters:
                    candidates.setdefault(patient.patient_id, []).append(s)
            store.upsert_results(session, results)
            store.insert_orders(session, orders)
            # Saved before merges: a merge reads the prior patient's flags from the database.
            save_patients(session, patients.values(), wall)
            for s in merges:
                merge = s.parsed
                assert isinstance(merge, PatientMerge)
                survivor = patients[s.patient]
                if merges_module.merge_patients(
                    session, survivor, _prior_keys(merge), merge.header.control_id, wall
                ):
                    # Re-evaluate: the merged history may hold an interaction neither had.
                    candidates.setdefault(survivor.patient_id, []).append(s)
            # Whole-message dead letters, and the items of the messages stored now (a
            # re-delivered message's items were dead-lettered with it the first time).
            claimed = {id(s) for s in fresh}
            store.insert_dead_letters(
                session,
                [
                    row
                    for s in staged
                    if s.parsed is None or id(s) in claimed
                    for row in s.dead_letters
                ],
            )
            save_patients(session, patients.values(), wall)
            session.flush()
            for patient_id in sorted(candidates):
                patient = patients[patient_id]
                if patient.has_iron and patient.has_antiresorptive:
                    self._evaluate_in_order(session, patient, candidates[patient_id])

    def _follow_aliases(self, session: Session, fresh: list[Staged]) -> None:
        """File messages sent under a merged-away identifier under the surviving patient."""
        aliases = merges_module.resolve_aliases(session, {s.patient for s in fresh if s.parsed})
        for s in fresh:
            s.patient = aliases.get(s.patient, s.patient)

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
        """Store one message that failed processing in the dead-letter table.

        Should the database refuse that row too (the message's own text broke the first
        attempt: a NUL byte, an over-long field), the row is stored again in a form that
        cannot fail on the message: its raw bytes, a control id cut to printable ASCII and a
        fixed reason. Only an outage, or a database that refuses even that, raises
        ``DatabaseUnavailable``, and the caller retries: the message is never skipped.
        """
        header = staged.parsed.header if staged.parsed else None
        control_id = header.control_id if header else sniff_control_id(staged.item.raw)
        log.error(
            "processing failed",
            extra={"control_id": _printable(control_id), "error": type(failure).__name__},
        )
        staged.parsed = None
        self._reject(staged, "processing", _describe(failure), control_id)
        try:
            self._insert_dead_letters(staged.dead_letters)
        except DatabaseUnavailable:
            raise
        except SQLAlchemyError as exc:
            log.error(
                "dead letter refused; storing its safe form",
                extra={"control_id": _printable(control_id), "error": type(exc).__name__},
            )
            row = dict(staged.dead_letters[0])
            row["control_id"] = _printable(control_id)[:199]
            row["reason"] = f"processing failed ({type(failure).__name__}); see the raw message"
            row["topic"] = _printable(row["topic"])
            staged.dead_letters = [row]
            staged.result = Processed(
                Outcome.DEAD_LETTER,
                control_id=row["control_id"],
                reason=row["reason"],
                error_class="processing",
            )
            try:
                self._insert_dead_letters([row])
            except SQLAlchemyError:
                # Refused even this: the message's fault while the database answers (the
                # consumer keeps it on the dead-letter topic), else an outage to wait out.
                if not database_reachable(self.engine):
                    raise DatabaseUnavailable("dead letter refused") from None
                raise
        self._log([staged])
        assert staged.result is not None
        return staged.result

    def _insert_dead_letters(self, rows: list[dict[str, Any]]) -> None:
        try:
            with Session(self.engine) as session, session.begin():
                store.insert_dead_letters(session, rows)
        except SQLAlchemyError as exc:
            if is_outage(exc):
                raise DatabaseUnavailable(type(exc).__name__) from exc
            raise

    def _log(self, staged: list[Staged]) -> None:
        for s in staged:
            result = s.result
            if result is None:
                continue
            if result.outcome is Outcome.DEAD_LETTER:
                # Reasons of a processing failure quote the exception, which can quote a
                # value: those stay in the dead-letter row; the log names the class.
                reason = result.reason if result.error_class != "processing" else ""
                log.warning(
                    "message dead-lettered",
                    extra={
                        "control_id": _printable(result.control_id),
                        "error_class": result.error_class,
                        "reason": reason,
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


def _prior_keys(merge: PatientMerge) -> list[str]:
    """The patient keys of a merge's prior identifiers (each with its own MRG-1 authority)."""
    authorities = merge.prior_authorities or ("",) * len(merge.prior_ids)
    return [patient_key(i, a) for i, a in zip(merge.prior_ids, authorities, strict=True)]


def _rejected_reason(rejected: Rejected) -> str:
    item = f"{rejected.item}: " if rejected.item else ""
    return f"{item}{rejected.reason} ({rejected.field} of {rejected.segment})"


def _printable(text: str) -> str:
    """Printable ASCII only: what a log line or a last-resort row may carry of a message."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


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
