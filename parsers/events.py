"""Typed, immutable events that parsers produce from HL7 v2 messages.

These are the only shapes the rest of LabSentinel sees of a message. They carry what the rules,
the pages and the audit trail need and nothing more: no patient names, no birth dates, no raw
segments. Every datetime is timezone-aware (UTC offset from the message, else the configured
hospital time zone).

They are NamedTuples rather than frozen dataclasses: as immutable, and built several times
faster (a frozen dataclass sets each field through ``object.__setattr__``: 2.1 µs for a
``LabResult`` against 0.34 µs), which counts at ten thousand messages a second. Use
``_replace`` to derive a changed copy.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple


class MessageHeader(NamedTuple):
    """MSH fields used for routing, de-duplication and logs."""

    message_type: str  # MSH-9.1^MSH-9.2, e.g. "ORU^R01"
    control_id: str  # MSH-10
    sending_application: str  # MSH-3.1
    sending_facility: str  # MSH-4.1
    message_time: datetime | None  # MSH-7
    version: str  # MSH-12.1


class Patient(NamedTuple):
    """The patient a message is about, as identified by the configured PID-3 preference."""

    id: str  # PID-3.1 of the chosen repetition
    authority: str  # PID-3.4.1 of the chosen repetition
    id_type: str  # PID-3.5 of the chosen repetition
    location: str  # PV1-3 rendered "point of care/room/bed" without empty parts ("" if absent)
    facility: str  # PV1-3.4.1 ("" if absent)
    service: str  # PV1-10 ("" if absent)


class LabResult(NamedTuple):
    """One OBX of an ORU^R01 whose code maps to an analyte LabSentinel knows."""

    analyte: str  # canonical key from the lab catalog: "phosphate", "calcium", "albumin", ...
    code: str  # OBX-3.1 (or OBX-3.4 when that was the code that matched)
    code_system: str  # OBX-3.3 (or OBX-3.6)
    code_text: str  # OBX-3.2
    value_type: str  # OBX-2 ("NM", "SN", "ST", ...)
    value: float | None  # numeric value (NM, or the number of an SN); None when not numeric
    comparator: str  # "" for a plain value, else "<", "<=", ">", ">=" or "=" from an SN
    value_text: str  # OBX-5 as sent, unescaped
    unit: str  # OBX-6.1 as sent (normalisation is the clinical core's job)
    reference_range: str  # OBX-7
    abnormal_flags: str  # OBX-8 (repetitions joined with "~")
    status: str  # OBX-11 (F, C, P, D, W, X, I, R, S, U)
    observed_at: datetime  # OBX-14, else OBR-7, else MSH-7
    placer_order_id: str  # OBR-2.1 (else ORC-2.1)
    filler_order_id: str  # OBR-3.1 (else ORC-3.1)
    set_id: str  # OBX-1
    sub_id: str = ""  # OBX-4 (observation sub-id): tells apart two OBX of one code in one OBR
    occurrence: int = 1  # 1-based count of this (code, sub_id) within its OBR, in message order
    position: str = ""  # "OBX[n]": where it stands in the message (for dead-letter reasons)


class Rejected(NamedTuple):
    """A relevant item (catalogued OBX, RXE or RXA) that could not be read, without values.

    The message's other items are still delivered; the service dead-letters each rejected
    item on its own with this reason, so one unusable result never hides another.
    """

    segment: str  # "OBX[3]", "RXE[2]", "RXA[1]": where, counted over the whole message
    field: str  # "OBX-14", "TQ1-7", ...
    reason: str  # PHI-free: "no observation time", "unusable timestamp", ...
    item: str  # the analyte or drug catalog key it would have been


class LabReport(NamedTuple):
    """An ORU^R01: the relevant results of every ORDER_OBSERVATION group, in message order."""

    header: MessageHeader
    patient: Patient
    results: tuple[LabResult, ...]
    rejected: tuple[Rejected, ...] = ()  # catalogued OBX that could not be read


class MedicationOrder(NamedTuple):
    """The pharmacy order of an RDE^O11 (or a give of an RAS^O17), classified by the catalog."""

    order_control: str  # ORC-1 (NW, CA, DC, XO, ...)
    order_status: str  # ORC-5
    placer_order_id: str  # ORC-2.1
    filler_order_id: str  # ORC-3.1
    drug: str | None  # drug catalog key (e.g. "ferric_carboxymaltose"); None if not in catalog
    drug_code: str  # RXE-2.1
    drug_code_system: str  # RXE-2.3
    drug_text: str  # RXE-2.2
    route: str  # RXR-1.1, upper-cased ("" if absent)
    dose_at: datetime  # TQ1-7, else RXE-1.4, else ORC-15, else ORC-9, else MSH-7
    end_at: datetime | None  # TQ1-8, else RXE-1.5
    give_amount: str  # RXE-3
    give_units: str  # RXE-5.1
    ordering_provider: str  # ORC-12.1 (an identifier, not a name)
    administered: bool = False  # True for an RAS^O17 administration (RXA-3 is the dose time)
    completion_status: str = ""  # RXA-20 (CP, RE, NA, PA), upper-cased; "" for an RDE


class PharmacyOrder(NamedTuple):
    """An RDE^O11 or RAS^O17: every ORDER group's catalogued give (RDE) or every catalogued
    administration (RAS, each RXA), in message order."""

    header: MessageHeader
    patient: Patient
    orders: tuple[MedicationOrder, ...]
    rejected: tuple[Rejected, ...] = ()  # catalogued RXE/RXA that could not be read


class PatientMerge(NamedTuple):
    """An ADT merge (A40, A18, A34, A36, A39): records under ``prior_ids`` now belong to
    ``surviving``.

    ``prior_ids`` are the MRG-1 identifiers chosen by the same rule as PID-3 (one per MRG, in
    message order, without duplicates and never the surviving id itself).
    """

    header: MessageHeader
    surviving: Patient
    prior_ids: tuple[str, ...]
    prior_authorities: tuple[str, ...] = ()  # MRG-1.4 of each prior id (same order); "" if none


class Ignored(NamedTuple):
    """A well-formed message that cannot matter: other message types, or no known analyte/drug.

    Produced by the fast path without a full parse, so irrelevant traffic costs microseconds.
    It still carries the header so the message is de-duplicated and its offset committed.
    """

    header: MessageHeader
    reason: str  # short, PHI-free: "message type ADT^A01", "no catalogued analyte", ...


ParsedMessage = LabReport | PharmacyOrder | PatientMerge | Ignored
