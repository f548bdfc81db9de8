"""The MSH segment -> delimiters and MessageHeader."""

from __future__ import annotations

from datetime import tzinfo

from parsers.encoding import Delimiters, component, field
from parsers.errors import ParseError
from parsers.events import MessageHeader
from parsers.timestamps import parse_timestamp

# MSH-1 + MSH-2 text -> Delimiters. A feed uses one or two encodings, so validating MSH-2
# once per encoding rather than once per message saves a few microseconds on every message.
# Invalid encodings raise and are not stored; the bound only matters for junk input.
_DELIMITERS: dict[str, Delimiters] = {}
_MAX_CACHED = 64


def msh_fields(segment: str, d: Delimiters) -> list[str]:
    """Split MSH so that index n is MSH-n (MSH-1 is the field separator itself)."""
    parts = segment.split(d.field)
    parts.insert(1, d.field)
    return parts


def delimiters(segment: str) -> Delimiters:
    """``Delimiters.from_msh(segment)``, cached by the MSH-1/MSH-2 text. Raises ParseError."""
    if len(segment) < 4:
        return Delimiters.from_msh(segment)
    end = segment.find(segment[3], 4)
    key = segment[3:] if end < 0 else segment[3:end]
    d = _DELIMITERS.get(key)
    if d is None:
        d = Delimiters.from_msh(segment)
        if len(_DELIMITERS) >= _MAX_CACHED:
            _DELIMITERS.clear()
        _DELIMITERS[key] = d
    return d


def parse_header(segment: str, tz: tzinfo) -> tuple[Delimiters, MessageHeader]:
    """Read the delimiters and the header from the first segment of a message.

    Raises ParseError naming MSH and the field when the segment is not MSH, the encoding
    characters are unusable (MSH-1/MSH-2), the message type (MSH-9.1) or control id (MSH-10)
    is empty, or the message time (MSH-7) is not a timestamp.
    """
    if not segment.startswith("MSH"):
        raise ParseError("message does not start with MSH", "MSH", "MSH-1")
    d = delimiters(segment)
    # Index n is MSH-(n+1): f[0] is "MSH", f[1] is MSH-2; fields past MSH-12 stay unsplit.
    f = segment.split(d.field, 12)
    if len(f) < 12:
        f += [""] * (12 - len(f))
    after_msh2 = len(f[0]) + len(f[1]) + 2
    if (
        segment.find(d.repetition, after_msh2) < 0
        and segment.find(d.subcomponent, after_msh2) < 0
        and segment.find(d.escape, after_msh2) < 0
    ):
        # No repetition, subcomponent or escape character after MSH-2 (the usual case):
        # component 1 of a field is the text before the first component separator.
        cs = d.component
        type_parts = f[8].split(cs, 2)
        kind = type_parts[0].strip().upper()
        trigger = type_parts[1].strip().upper() if len(type_parts) > 1 else ""
        control_id = f[9].partition(cs)[0].strip()
        application = f[2].partition(cs)[0].strip()
        facility = f[3].partition(cs)[0].strip()
        time_text = f[6].partition(cs)[0]
        version = f[11].partition(cs)[0].strip()
    else:
        msh = msh_fields(segment, d)
        msh9 = field(msh, 9)
        kind = component(msh9, d, 1).strip().upper()
        trigger = component(msh9, d, 2).strip().upper()
        control_id = component(field(msh, 10), d, 1).strip()
        application = component(field(msh, 3), d, 1).strip()
        facility = component(field(msh, 4), d, 1).strip()
        time_text = component(field(msh, 7), d, 1)
        version = component(field(msh, 12), d, 1).strip()
    if not kind:
        raise ParseError("missing message type", "MSH", "MSH-9")
    if not control_id:
        raise ParseError("missing message control id", "MSH", "MSH-10")
    message_time = parse_timestamp(time_text, tz, "MSH", "MSH-7")
    message_type = f"{kind}^{trigger}" if trigger else kind
    # Positional, in field order: keywords cost more on a frozen dataclass.
    header = MessageHeader(message_type, control_id, application, facility, message_time, version)
    return d, header


def sniff_control_id(raw: bytes) -> str:
    """MSH-10 of raw bytes that may not parse, best effort, for logs and dead-letter rows.

    Reads only the first segment, as Latin-1 (every byte decodes), and returns "" when there
    is no MSH segment or its MSH-10 holds a character that is not printable. At most 64
    characters. Pure; never raises.
    """
    try:
        text = raw.lstrip(b"\x0b\r\n ").decode("latin-1")
        if not text.startswith("MSH") or len(text) < 4:
            return ""
        first = text.replace("\n", "\r").split("\r", 1)[0]
        fields = first.split(text[3])
        return fields[9][:64] if len(fields) > 9 and fields[9].isprintable() else ""
    except Exception:  # the whole point is to say something about junk: never raise
        return ""
