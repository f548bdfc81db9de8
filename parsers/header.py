"""The MSH segment -> delimiters and MessageHeader."""

from __future__ import annotations

from datetime import tzinfo

from parsers.encoding import Delimiters, component, field
from parsers.errors import ParseError
from parsers.events import MessageHeader
from parsers.timestamps import parse_timestamp


def msh_fields(segment: str, d: Delimiters) -> list[str]:
    """Split MSH so that index n is MSH-n (MSH-1 is the field separator itself)."""
    parts = segment.split(d.field)
    parts.insert(1, d.field)
    return parts


def parse_header(segment: str, tz: tzinfo) -> tuple[Delimiters, MessageHeader]:
    """Read the delimiters and the header from the first segment of a message.

    Raises ParseError naming MSH and the field when the segment is not MSH, the encoding
    characters are unusable (MSH-1/MSH-2), the message type (MSH-9.1) or control id (MSH-10)
    is empty, or the message time (MSH-7) is not a timestamp.
    """
    if not segment.startswith("MSH"):
        raise ParseError("message does not start with MSH", "MSH", "MSH-1")
    d = Delimiters.from_msh(segment)
    f = msh_fields(segment, d)
    msh9 = field(f, 9)
    kind = component(msh9, d, 1).strip().upper()
    if not kind:
        raise ParseError("missing message type", "MSH", "MSH-9")
    trigger = component(msh9, d, 2).strip().upper()
    control_id = component(field(f, 10), d, 1).strip()
    if not control_id:
        raise ParseError("missing message control id", "MSH", "MSH-10")
    header = MessageHeader(
        message_type=f"{kind}^{trigger}" if trigger else kind,
        control_id=control_id,
        sending_application=component(field(f, 3), d, 1).strip(),
        sending_facility=component(field(f, 4), d, 1).strip(),
        message_time=parse_timestamp(component(field(f, 7), d, 1), tz, "MSH", "MSH-7"),
        version=component(field(f, 12), d, 1).strip(),
    )
    return d, header
