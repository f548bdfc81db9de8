"""One message → parse → one database transaction (dedupe, store, evaluate, outbox) → outcome.

The same pipeline serves the Kafka consumer, ``replay`` and dead-letter reprocessing. It is
synchronous (SQLAlchemy sessions) and in two halves: ``stage_batch`` (pure: parse, checks, row
preparation; ``service.ingest.staging``) and ``store_batch`` (the transaction, here, with the
per-patient evaluation of ``service.ingest.evaluation``). The consumer runs the first on its event
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

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from alerts.identity import patient_key
from parsers import LabReport, PatientMerge
from parsers.header import sniff_control_id
from service.db.engine import database_reachable, is_outage
from service.db.patient_history import EVALUATED_ANALYTES
from service.db.patients import lock_patients, mark_exposure, save_patients
from service.ingest import merges as merges_module
from service.ingest import store
from service.ingest.evaluation import Evaluator
from service.ingest.messages import DatabaseUnavailable, Incoming, Outcome, Processed
from service.ingest.staging import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Staged,
    Stager,
    patient_of,
    printable,
    reject,
)
from service.notify.alerting import Delivery
from service.runtime.clinical import INTERACTING_CLASSES, Clinical
from service.runtime.clock import Clock, WallClock
from service.runtime.phi import patient_hash

# The vocabulary of the pipeline's callers (consumer, replay, API, tools, tests).
__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DatabaseUnavailable",
    "Incoming",
    "Outcome",
    "Pipeline",
    "Processed",
    "Staged",
]

log = logging.getLogger(__name__)


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
        self.stager = Stager(
            clinical,
            clock=self.clock,
            wall_clock=self.wall_clock,
            max_message_bytes=max_message_bytes,
        )

    @property
    def max_message_bytes(self) -> int:
        return self.stager.max_message_bytes

    @max_message_bytes.setter
    def max_message_bytes(self, limit: int) -> None:
        self.stager.max_message_bytes = limit

    def process(self, item: Incoming) -> Processed:
        return self.process_batch([item])[0]

    def process_batch(self, items: Sequence[Incoming]) -> list[Processed]:
        """Process ``items`` in one transaction; results in the same order.

        When the batch fails for a reason other than an outage (a constraint the data broke, a
        bug in evaluation), it is processed again message by message so that one poison
        message is dead-lettered alone and the others are stored. Raises DatabaseUnavailable
        (nothing of the batch stored) when the database cannot be reached. Blocks.
        """
        return self.store_batch(self.stage_batch(items))

    def stage_batch(self, items: Sequence[Incoming]) -> list[Staged]:
        """The steps that need no database (parse, unit check), so that a caller can run them
        for the next batch while the previous one is being stored. Never raises, never
        blocks."""
        return [self.stager.stage(item) for item in items]

    def store_batch(self, staged: list[Staged]) -> list[Processed]:
        """The transaction of ``process_batch`` for messages staged by ``stage_batch``, in the
        order they were staged. Raises DatabaseUnavailable only; blocks."""
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

    # -- the transaction ------------------------------------------------------------------

    def _commit(self, staged: list[Staged]) -> None:
        wall = self.wall_clock.now()
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            fresh = self._claim(session, staged, wall)
            self._follow_aliases(session, fresh)
            events = {s.patient: patient_of(s.parsed) for s in fresh if s.parsed}
            priors = [
                key
                for s in fresh
                if isinstance(s.parsed, PatientMerge)
                for key in _prior_keys(s.parsed)
            ]
            patients = lock_patients(session, events, wall, also_lock=priors)
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
                    matters = any(r.analyte in EVALUATED_ANALYTES for r in parsed.results)
                else:
                    pairs = zip(parsed.orders, s.drug_classes, strict=True)
                    for position, (order, drug_class) in enumerate(pairs, 1):
                        orders.append(
                            store.order_row(s.patient, order, drug_class, parsed.header, position)
                        )
                        mark_exposure(patient, drug_class)
                    matters = not INTERACTING_CLASSES.isdisjoint(s.drug_classes)
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
            evaluator = Evaluator(self.clinical, self.delivery, wall_clock=self.wall_clock)
            for patient_id in sorted(candidates):
                patient = patients[patient_id]
                if patient.exposed_to_both:
                    evaluator.evaluate_in_order(session, patient, candidates[patient_id])

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
            extra={"control_id": printable(control_id), "error": type(failure).__name__},
        )
        staged.parsed = None
        reject(
            staged,
            "processing",
            _describe(failure),
            control_id,
            created_at=self.wall_clock.now(),
        )
        try:
            self._insert_dead_letters(staged.dead_letters)
        except DatabaseUnavailable:
            raise
        except SQLAlchemyError as exc:
            log.error(
                "dead letter refused; storing its safe form",
                extra={"control_id": printable(control_id), "error": type(exc).__name__},
            )
            row = dict(staged.dead_letters[0])
            row["control_id"] = printable(control_id)[:199]
            row["reason"] = f"processing failed ({type(failure).__name__}); see the raw message"
            row["topic"] = printable(row["topic"])
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
                        "control_id": printable(result.control_id),
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
                    },
                )


def _prior_keys(merge: PatientMerge) -> list[str]:
    """The patient keys of a merge's prior identifiers (each with its own MRG-1 authority)."""
    authorities = merge.prior_authorities or ("",) * len(merge.prior_ids)
    return [patient_key(i, a) for i, a in zip(merge.prior_ids, authorities, strict=True)]


def _describe(exc: BaseException) -> str:
    # Stored in the dead-letter table (inside the database, where PHI may live) for the
    # engineer who fixes it; logs get only the class name.
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:500]
