"""HL7 v2 bytes -> typed events. Pure: no I/O, no clock, no database."""

from parsers.config import ParserConfig
from parsers.errors import ParseError
from parsers.events import (
    Ignored,
    LabReport,
    LabResult,
    MedicationOrder,
    MessageHeader,
    ParsedMessage,
    Patient,
    PharmacyOrder,
)

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
    "PharmacyOrder",
]
