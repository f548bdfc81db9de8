"""The pipeline's pure steps: one raw record → a ``Staged`` message, ready for the transaction.

Parse, refuse what cannot be stored (a runaway size, an identity too long for its column),
check each relevant result's value and unit, keep a pharmacy message's catalogued orders,
and prepare the rows the transaction writes: result rows, and one dead-letter row per
unusable message or item. No database, no I/O; the clock is read only for the message's
``now`` (a ``MessageClock`` advances with the message's MSH-7).

``Stager.stage`` never raises: a bug met by one message makes that message a ``processing``
dead letter, not the batch's end.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from alerts.identity import patient_key
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
from parsers.header import sniff_control_id
from service.db.patient_history import EVALUATED_ANALYTES
from service.ingest import store
from service.ingest.messages import Incoming, Outcome, Processed
from service.runtime.clinical import Clinical
from service.runtime.clock import Clock, MessageClock
from service.runtime.logs import describe_exception

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
# How much of an over-long record is read for its MSH-10: enough for any MSH segment.
_SNIFF_BYTES = 4096
# OBX-11 statuses that may come without a number: pending (I), a retraction (D wrong result,
# W wrong patient, X cannot be obtained). U "changed to final" with an empty OBX-5 keeps the
# stored value (CLINICAL.md "Edge semantics"); U with text that is no number is unusable.
_VALUELESS_STATUSES = frozenset({"I", "D", "W", "X"})


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


class Stager:
    """Stages records with the clinical configuration; ``wall_clock`` dates dead letters."""

    def __init__(
        self, clinical: Clinical, clock: Clock, wall_clock: Clock, max_message_bytes: int
    ) -> None:
        self.clinical = clinical
        self.clock = clock
        self.wall_clock = wall_clock
        self.max_message_bytes = max_message_bytes

    def stage(self, item: Incoming) -> Staged:
        """``item`` staged; a failure of the steps themselves is a ``processing`` dead letter.
        Never raises."""
        try:
            return self._stage(item)
        except Exception as exc:  # a bug met by one message must not take the batch with it
            staged = Staged(item, self.clock.now())
            control_id = sniff_control_id(item.raw)
            log.error(
                "staging failed",
                extra={"control_id": printable(control_id), "error": type(exc).__name__},
            )
            return self.reject(staged, "processing", describe_exception(exc), control_id)

    def _stage(self, item: Incoming) -> Staged:
        if len(item.raw) > self.max_message_bytes:
            # Refused before decoding: a runaway record must not cost its size again in text.
            reason = f"record of {len(item.raw)} bytes exceeds max_message_bytes"
            control_id = sniff_control_id(item.raw[:_SNIFF_BYTES])
            return self.reject(Staged(item, self.clock.now()), "size", reason, control_id)
        try:
            parsed = parse_message(item.raw, self.clinical.parser)
        except ParseError as exc:
            control_id = sniff_control_id(item.raw)
            return self.reject(Staged(item, self.clock.now()), "parse", str(exc), control_id)
        header = parsed.header
        if isinstance(self.clock, MessageClock):
            self.clock.advance(header.message_time)
        staged = Staged(item, self.clock.now())
        if isinstance(parsed, Ignored):
            staged.result = Processed(
                Outcome.IGNORED, header.message_type, header.control_id, parsed.reason
            )
            return staged
        patient = patient_of(parsed)
        staged.patient = patient_key(patient.id, patient.authority)
        if len(staged.patient) > MAX_PATIENT_KEY:
            reason = f"patient identifier longer than {MAX_PATIENT_KEY} characters (PID-3)"
            return self.reject(staged, "parse", reason, header.control_id)
        if len(header.control_id) > MAX_CONTROL_ID or len(header.sending_facility) > MAX_FACILITY:
            reason = "MSH-10 or MSH-4 longer than the de-duplication key allows"
            return self.reject(staged, "parse", reason, header.control_id[:MAX_CONTROL_ID])
        staged.parsed = parsed  # names the message in the rows of its items' dead letters
        if isinstance(parsed, LabReport):
            return self._stage_report(staged, parsed)
        if isinstance(parsed, PharmacyOrder):
            return self._stage_orders(staged, parsed)
        return staged

    def _stage_report(self, staged: Staged, report: LabReport) -> Staged:
        usable = self._usable_results(staged, report)
        if not usable:
            return self._reject_whole(staged, report)
        if len(usable) < len(report.results):
            report = report._replace(results=tuple(usable))
        staged.parsed = report
        staged.rows = store.result_rows(staged.patient, report.results, report.header, staged.now)
        return staged

    def _stage_orders(self, staged: Staged, order: PharmacyOrder) -> Staged:
        """Keep the catalogued order groups; a message with none is ignored (or, when some
        groups could not be read, a dead letter)."""
        header = order.header
        for rejected in order.rejected:
            self._reject_item(staged, "parse", _rejected_reason(rejected), rejected.segment)
        drugs = self.clinical.drugs
        kept = [(o, drugs.get(o.drug)) for o in order.orders if o.drug]
        known = [(o, d) for o, d in kept if d is not None]
        if not known:
            if staged.dead_letters:
                return self._reject_whole(staged, order)
            staged.parsed = None
            staged.result = Processed(
                Outcome.IGNORED, header.message_type, header.control_id, "drug not in catalog"
            )
            return staged
        staged.parsed = order._replace(orders=tuple(o for o, _ in known))
        staged.drug_classes = tuple(d.drug_class for _, d in known)
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
            if result.analyte not in EVALUATED_ANALYTES:
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
        row = dead_letter_row(
            staged, error_class, reason, created_at=self.wall_clock.now(), where=where
        )
        staged.dead_letters.append(row)

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

    def reject(self, staged: Staged, error_class: str, reason: str, control_id: str) -> Staged:
        """The whole message is one dead letter (its row replaces any item rows)."""
        return reject(staged, error_class, reason, control_id, created_at=self.wall_clock.now())


def reject(
    staged: Staged, error_class: str, reason: str, control_id: str, *, created_at: datetime
) -> Staged:
    """Make ``staged`` one whole-message dead letter: its row and its ``DEAD_LETTER`` result."""
    row = dead_letter_row(staged, error_class, reason, created_at=created_at, control_id=control_id)
    staged.dead_letters = [row]
    staged.result = Processed(
        Outcome.DEAD_LETTER, control_id=control_id, reason=reason, error_class=error_class
    )
    return staged


def dead_letter_row(
    staged: Staged,
    error_class: str,
    reason: str,
    *,
    created_at: datetime,
    where: str = "",
    control_id: str | None = None,
) -> dict[str, Any]:
    """A dead-letter table row for the message, or for one item of it (``where``).

    The location key says where the message came from (a Kafka offset, else a hash of its
    bytes), so a re-delivered message finds its row instead of adding one.
    """
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
        "control_id": control_id[:MAX_CONTROL_ID],
        "reason": reason[:2000],
        "error_class": error_class,
        "raw": item.raw,
        "status": "new",
        "created_at": created_at,
    }


def patient_of(parsed: LabReport | PharmacyOrder | PatientMerge) -> PatientEvent:
    """The patient a message files under (a merge's surviving patient)."""
    return parsed.surviving if isinstance(parsed, PatientMerge) else parsed.patient


def printable(text: str) -> str:
    """Printable ASCII only: what a log line or a last-resort row may carry of a message."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _rejected_reason(rejected: Rejected) -> str:
    item = f"{rejected.item}: " if rejected.item else ""
    return f"{item}{rejected.reason} ({rejected.field} of {rejected.segment})"
