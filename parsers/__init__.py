"""HL7 v2 bytes -> typed events. Pure: no I/O, no clock, no database.

``split_messages`` cuts a file or stream into messages; ``parse_message`` turns one message
into a LabReport, PharmacyOrder, PatientMerge or Ignored, or raises ParseError.
"""

from parsers.config import ParserConfig
from parsers.dispatch import parse_message
from parsers.errors import ParseError
from parsers.events import (
    Ignored,
    LabReport,
    LabResult,
    MedicationOrder,
    MessageHeader,
    ParsedMessage,
    Patient,
    PatientMerge,
    PharmacyOrder,
    Rejected,
)
from parsers.framing import split_messages

__all__ = [
    "Ignored",
    "LabReport",
    "LabResult",
    "MedicationOrder",
    "MessageHeader",
    "ParseError",
    "ParsedMessage",
    "ParserConfig",
    "Patient",
    "PatientMerge",
    "PharmacyOrder",
    "Rejected",
    "parse_message",
    "split_messages",
]
