"""parse_message: one message's bytes -> LabReport, PharmacyOrder, PatientMerge or Ignored."""

from __future__ import annotations

from collections.abc import Callable

from parsers.adt import MERGE_TYPES, parse_merge
from parsers.config import ParserConfig
from parsers.encoding import Delimiters
from parsers.errors import ParseError
from parsers.events import Ignored, MessageHeader, ParsedMessage
from parsers.framing import decode_message, split_segments
from parsers.header import parse_header
from parsers.oru import parse_oru
from parsers.pharmacy import parse_ras, parse_rde

Handler = Callable[[list[str], Delimiters, MessageHeader, ParserConfig], ParsedMessage]

# MSH-9.1^MSH-9.2 -> handler. Everything else is Ignored after reading MSH only.
HANDLERS: dict[str, Handler] = {
    "ORU^R01": parse_oru,
    "RDE^O11": parse_rde,
    "RDE^O01": parse_rde,  # v2.3/2.4 name of the pharmacy encoded order
    "RAS^O17": parse_ras,
    # patient merges (A40/A39 repeat PID/MRG pairs; A18/A34/A36 have one); A41 (account
    # merge) does not change the patient and stays Ignored
    **dict.fromkeys(MERGE_TYPES, parse_merge),
}


def parse_message(raw: bytes | str, config: ParserConfig) -> ParsedMessage:
    """Parse one HL7 v2 message (bytes or text, MLLP framing allowed).

    Returns a LabReport for ORU^R01 with catalogued results, a PharmacyOrder for RDE^O11,
    RDE^O01 and RAS^O17 with a catalogued drug, a PatientMerge for ADT^A40, A39, A18, A34 and
    A36, and Ignored for everything else that has a usable header. Raises ParseError (and
    nothing else) for an unusable message; its text names segment and field and never contains
    field values.
    """
    segments = split_segments(decode_message(raw))
    if not segments:
        raise ParseError("empty message", "MSH", "MSH-1")
    d, header = parse_header(segments[0], config.timezone)
    handler = HANDLERS.get(header.message_type)
    if handler is None:
        return Ignored(header, f"message type {header.message_type}")
    return handler(segments, d, header, config)
