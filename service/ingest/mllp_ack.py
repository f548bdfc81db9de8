"""The pure half of the MLLP gateway: framing, what one frame is, where it goes, its ACK.

``FrameReader`` cuts a byte stream into frame contents (bounded memory, oversized frames cut
short). ``inspect_frame`` reads a frame's MSH with the parsers (``decode_message``,
``split_segments``, ``parse_header``) and answers ``Accepted`` (publish it: topic, key, what
the ACK copies) or ``Refused`` (answer AR: a short PHI-free reason, an HL7 table 0357 code,
where). ``build_ack`` renders the original-mode acknowledgement of either, MLLP-framed. No
I/O, no clock (``now`` and the ACK's own control id are parameters); nothing here raises.

Routing (MSH-9.1 → index into ``settings.kafka.topics``, whose shipped value is
``("hl7.oru", "hl7.rde")``): ORU → 0 (results); RDE, RAS, ADT → 1 (orders, administrations and
patient merges: the pipeline reads all three from the orders topic). With one topic configured,
everything goes to it. Other message types are refused (AR 200): an interface engine that
routes them here is misconfigured, and the AR tells its analyst so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from parsers.config import ParserConfig
from parsers.encoding import Delimiters, component, field
from parsers.errors import ParseError
from parsers.framing import decode_message, split_segments
from parsers.header import delimiters, msh_fields, parse_header, sniff_control_id
from parsers.patient import choose_identifier

VT, FS, CR = b"\x0b", b"\x1c", b"\x0d"
HEAD_BYTES = 4096  # what is kept of an oversized frame: enough for its MSH

ROUTES: dict[str, int] = {"ORU": 0, "RDE": 1, "RAS": 1, "ADT": 1}


def topic_for(topics: Sequence[str], index: int) -> str:
    """The topic of ``Accepted.topic_index``: with only one topic configured, everything goes
    to it."""
    return topics[index] if index < len(topics) else topics[0]


# HL7 table 0357 (message error condition codes) used in ERR.
ERROR_TEXT = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "200": "Unsupported message type",
    "207": "Application internal error",
}
# ParseError field of an unusable MSH → table 0357 code.
_CODE_BY_FIELD = {"MSH-1": "102", "MSH-2": "102", "MSH-9": "101", "MSH-10": "101"}


@dataclass(frozen=True, slots=True)
class Reply:
    """What the ACK copies from the frame's MSH: raw field text, in the sender's delimiters."""

    field_sep: str = "|"
    encoding: str = "^~\\&"  # MSH-2 as sent (with the v2.7 truncation character if any)
    sending_app: str = ""  # MSH-3 of the frame → MSH-5 of the ACK
    sending_facility: str = ""  # MSH-4 → MSH-6
    receiving_app: str = ""  # MSH-5 → MSH-3
    receiving_facility: str = ""  # MSH-6 → MSH-4
    processing_id: str = "P"  # MSH-11, echoed
    version: str = "2.5.1"  # MSH-12, echoed
    trigger: str = ""  # MSH-9.2: the ACK's MSH-9 is ACK^<trigger>^ACK
    charset: str = "utf-8"  # how the frame decoded: the ACK goes back the same way


DEFAULT_REPLY = Reply()


@dataclass(frozen=True, slots=True)
class Accepted:
    """A frame to publish: ``topic_index`` into ``settings.kafka.topics``, record key."""

    control_id: str  # MSH-10 (component 1, stripped, as the pipeline's dedupe reads it)
    message_type: str  # "ORU^R01"
    topic_index: int
    key: bytes  # the patient identifier (PID-3 as the pipeline chooses it), else MSH-10
    reply: Reply


@dataclass(frozen=True, slots=True)
class Refused:
    """A frame answered AR. ``reason`` is one of our sentences: never a field value."""

    reason: str
    code: str  # HL7 table 0357
    location: str  # "MSH-9", or "" when no field is to blame
    control_id: str  # best effort (MSA-2), "" when unreadable
    reply: Reply


def inspect_frame(frame: bytes, config: ParserConfig) -> Accepted | Refused:
    """Decide what to do with one frame's content (framing bytes already removed).

    Needs MSH first with usable delimiters, a message type and a control id; a bad MSH-7 is
    accepted (the pipeline dead-letters it with its reason, as for a record sent to Kafka).
    The key is PID-3.1 of the identifier ``choose_identifier`` accepts, else MSH-10. Never
    raises.
    """
    text = decode_message(frame)
    charset = _charset(frame)
    segments = split_segments(text)
    if not segments:
        return Refused("empty message", "100", "MSH-1", "", DEFAULT_REPLY)
    first = segments[0]
    if not first.startswith("MSH"):
        return Refused("message does not start with MSH", "100", "MSH-1", "", DEFAULT_REPLY)
    try:
        d, header = parse_header(first, config.timezone)
        control_id, message_type = header.control_id, header.message_type
    except ParseError as exc:
        if exc.field != "MSH-7":
            reply = _reply_or_default(first, charset)
            code = _CODE_BY_FIELD.get(exc.field, "100")
            return Refused(exc.reason, code, exc.field, sniff_control_id(frame), reply)
        # Type and control id are read before the time: both are there.
        d = delimiters(first)
        msh = msh_fields(first, d)
        control_id = component(field(msh, 10), d, 1).strip()
        kind, trigger = (component(field(msh, 9), d, c).strip().upper() for c in (1, 2))
        message_type = f"{kind}^{trigger}" if trigger else kind
    reply = _reply(first, d, charset)
    kind = message_type.partition("^")[0]
    index = ROUTES.get(kind)
    if index is None:
        return Refused("unsupported message type", "200", "MSH-9", control_id, reply)
    key = _patient_key(segments, d, config) or control_id
    return Accepted(control_id, message_type, index, key.encode("utf-8", "replace"), reply)


def refuse_oversized(head: bytes, limit: int) -> Refused:
    """The AR of a frame larger than ``limit`` bytes; only its first segment is read."""
    first = head.lstrip(VT + CR + b"\n ").replace(b"\n", b"\r").split(b"\r", 1)[0]
    charset = _charset(first)
    reply = _reply_or_default(first.decode(charset, "replace").strip(), charset)
    reason = f"message larger than {limit} bytes"
    return Refused(reason, "207", "", sniff_control_id(head), reply)


def build_ack(
    reply: Reply,
    code: str,
    control_id: str,
    *,
    ack_id: str,
    now: datetime,
    reason: str = "",
    error_code: str = "",
    location: str = "",
) -> bytes:
    """The MLLP-framed original-mode ACK: MSH (sender and receiver swapped, the message's
    version, delimiters and processing id, MSH-9 ``ACK^<trigger>^ACK``, MSH-10 ``ack_id``),
    ``MSA|code|control_id[|reason]`` and, for AE/AR, an ERR (ERR-1 ELD before v2.5, ERR-2/3/4
    and ERR-8 from v2.5 on). ``now`` must be timezone-aware. Never raises.
    """
    f = reply.field_sep
    d = _delimiters(reply)
    c = d.component
    msh9 = f"ACK{c}{reply.trigger}{c}ACK" if reply.trigger else "ACK"
    stamp = now.strftime("%Y%m%d%H%M%S%z")
    msh = f.join(
        [
            "MSH",
            reply.encoding,
            reply.receiving_app or "LABSENTINEL",
            reply.receiving_facility,
            reply.sending_app,
            reply.sending_facility,
            stamp,
            "",
            msh9,
            escape(ack_id, d),
            reply.processing_id or "P",
            reply.version or DEFAULT_REPLY.version,
        ]
    )
    msa = f.join(["MSA", code, escape(control_id, d)] + ([escape(reason, d)] if reason else []))
    segments = [msh, msa]
    if code != "AA":
        segments.append(_err(reply, d, error_code or "207", location, reason))
    body = "\r".join(segments) + "\r"
    return VT + body.encode(reply.charset, "replace") + FS + CR


def escape(text: str, d: Delimiters) -> str:
    """``text`` with HL7 escape sequences for the delimiters it contains."""
    if d.escape in text:
        text = text.replace(d.escape, f"{d.escape}E{d.escape}")
    for char, name in (
        (d.field, "F"),
        (d.component, "S"),
        (d.repetition, "R"),
        (d.subcomponent, "T"),
    ):
        if char in text:
            text = text.replace(char, f"{d.escape}{name}{d.escape}")
    return text.replace("\r", " ").replace("\n", " ")


def _err(reply: Reply, d: Delimiters, code: str, location: str, reason: str) -> str:
    f, c, s = reply.field_sep, d.component, d.subcomponent
    text = ERROR_TEXT.get(code, ERROR_TEXT["207"])
    segment, _, position = location.partition("-")
    where = [segment, "1", position] if segment else []
    if _before_v25(reply.version):
        # ERR-1 (ELD): segment^sequence^field^code&text&table.
        eld = c.join([*(where or ["", "", ""]), s.join([code, text, "HL70357"])])
        return f"ERR{f}{eld}"
    erl = c.join(where)
    cwe = c.join([code, text, "HL70357"])
    return f.join(["ERR", "", erl, cwe, "E", "", "", "", escape(reason, d)])


def _before_v25(version: str) -> bool:
    numbers = version.partition("^")[0].strip().split(".")
    try:
        return tuple(int(n) for n in numbers[:2]) < (2, 5)
    except ValueError:
        return False


def _patient_key(segments: list[str], d: Delimiters, config: ParserConfig) -> str:
    prefix = "PID" + d.field
    for segment in segments[1:]:
        if segment.startswith(prefix):
            try:
                return choose_identifier(field(segment.split(d.field, 4), 3), d, config)[0]
            except ParseError:
                return ""
    return ""


def _charset(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _reply(first: str, d: Delimiters, charset: str) -> Reply:
    msh = msh_fields(first, d)
    return Reply(
        field_sep=d.field,
        encoding=field(msh, 2),
        sending_app=field(msh, 3),
        sending_facility=field(msh, 4),
        receiving_app=field(msh, 5),
        receiving_facility=field(msh, 6),
        processing_id=field(msh, 11),
        version=field(msh, 12),
        trigger=component(field(msh, 9), d, 2).strip().upper(),
        charset=charset,
    )


def _reply_or_default(first: str, charset: str) -> Reply:
    """The reply fields of an MSH whose delimiters are usable; the defaults otherwise."""
    if not first.startswith("MSH"):
        return Reply(charset=charset)
    try:
        return _reply(first, delimiters(first), charset)
    except ParseError:
        return Reply(charset=charset)


def _delimiters(reply: Reply) -> Delimiters:
    try:
        return Delimiters.from_msh(f"MSH{reply.field_sep}{reply.encoding}{reply.field_sep}")
    except ParseError:  # a Reply is built from delimiters that parsed: not reached
        return Delimiters("|", "^", "~", "\\", "&")


@dataclass(frozen=True, slots=True)
class Oversized:
    """A frame over the size limit: only its beginning was kept."""

    head: bytes


class FrameReader:
    """Cuts a byte stream into MLLP frame contents. Pure; bounded memory.

    A frame is what lies between VT and FS (a CR right after FS is consumed, also when it
    arrives in the next chunk). Bytes before a VT (stray line ends, an abandoned frame) are
    dropped; bytes ended by FS without any VT are taken as a frame, leniently. Content beyond
    ``max_bytes`` is discarded as it arrives and the frame comes out as ``Oversized``.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._buf = bytearray()
        self._head: bytes | None = None  # set while discarding an oversized frame
        self._skip_cr = False

    def feed(self, data: bytes) -> list[bytes | Oversized]:
        frames: list[bytes | Oversized] = []
        pos, n = 0, len(data)
        if self._skip_cr and n:
            pos = 1 if data[:1] == CR else 0
            self._skip_cr = False
        while pos < n:
            end = data.find(FS, pos)
            stop = n if end < 0 else end
            start = data.rfind(VT, pos, stop)
            if start >= 0:  # a frame begins: whatever came before it was never finished
                self._buf.clear()
                self._head = None
                pos = start + 1
            self._append(data, pos, stop)
            if end < 0:
                break
            frames.append(self._take())
            pos = end + 1
            if pos < n:
                pos += data[pos : pos + 1] == CR
            else:
                self._skip_cr = True
        return frames

    @property
    def pending(self) -> bool:
        """True when part of a frame has arrived without its end."""
        return bool(self._buf) or self._head is not None

    def _append(self, data: bytes, start: int, stop: int) -> None:
        if self._head is not None or start >= stop:
            return
        if len(self._buf) + stop - start > self._max:
            self._head = bytes((self._buf + data[start:stop])[:HEAD_BYTES])
            self._buf.clear()
            return
        self._buf += data[start:stop]

    def _take(self) -> bytes | Oversized:
        frame: bytes | Oversized = (
            Oversized(self._head) if self._head is not None else bytes(self._buf)
        )
        self._buf.clear()
        self._head = None
        return frame
