"""HL7 v2.5.1 text building blocks for the synthetic feed: escaping, timestamps, segments.

Messages are built from string templates, not with hl7apy: hl7apy is two orders of magnitude
too slow for the throughput benchmark, so it serves as the test oracle instead. Every value
that could contain a delimiter goes through `escape()`; templates are escaped once when the
catalog is built, so the hot loop only concatenates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

ENCODING_CHARACTERS = "^~\\&"
SEGMENT_END = "\r"

# One pass (str.translate) so the escape character itself is escaped exactly once.
_ESCAPES = str.maketrans(
    {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\"},
)
_UNESCAPES = {"E": "\\", "F": "|", "S": "^", "T": "&", "R": "~"}
_ESCAPE_SEQUENCE = re.compile(r"\\([EFSTR])\\")


def escape(value: str) -> str:
    """Escape HL7 delimiters (default encoding characters) in a primitive value.

    `\\` → `\\E\\`, `|` → `\\F\\`, `^` → `\\S\\`, `&` → `\\T\\`, `~` → `\\R\\`.
    CR and LF are not representable in a primitive value here; callers never pass them.
    """
    return value.translate(_ESCAPES)


def unescape(value: str) -> str:
    """Inverse of `escape()` for the five delimiter escapes (other sequences are kept)."""
    return _ESCAPE_SEQUENCE.sub(lambda m: _UNESCAPES[m.group(1)], value)


class Timestamps:
    """Formats epoch seconds as HL7 TS (YYYYMMDDHHMMSS), cached per hour.

    Times are always written as UTC wall time; `offset=True` appends "+0000". A message
    without an offset is therefore read identically by a receiver whose hospital time zone is
    UTC (the shipped default). strftime costs microseconds, so hours are memoised.
    """

    __slots__ = ("_hours",)

    def __init__(self) -> None:
        self._hours: dict[int, str] = {}

    def __call__(self, seconds: int, offset: bool) -> str:
        hour, rest = divmod(seconds, 3600)
        text = self._hours.get(hour)
        if text is None:
            text = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y%m%d%H")
            self._hours[hour] = text
        minute, second = divmod(rest, 60)
        if offset:
            return f"{text}{minute:02d}{second:02d}+0000"
        return f"{text}{minute:02d}{second:02d}"


@dataclass(frozen=True, slots=True)
class PatientSegments:
    """A synthetic patient: the MR identifier and pre-rendered PID and PV1 segments."""

    mrn: str
    key: bytes
    pid_mr_first: str  # PID with PID-3 "MRN~SSN"
    pid_ss_first: str  # PID with PID-3 "SSN~MRN" (exercises the identifier choice)
    pv1: str


def patient_segments(
    *,
    mrn: str,
    ssn: str,
    family: str,
    given: str,
    middle: str,
    birth_date: str,
    sex: str,
    street: str,
    location: str,
    patient_class: str,
    service: str,
) -> PatientSegments:
    """Render PID and PV1 once per patient (all parts escaped)."""
    mr = f"{escape(mrn)}^^^GH^MR"
    ss = f"{escape(ssn)}^^^SSA^SS"
    name = f"{escape(family)}^{escape(given)}^{escape(middle)}"
    address = f"{escape(street)}^^SPRINGFIELD^ZZ^00000"
    tail = f"||{name}||{birth_date}|{sex}|||{address}"
    return PatientSegments(
        mrn=mrn,
        key=mrn.encode("ascii"),
        pid_mr_first=f"PID|1||{mr}~{ss}{tail}",
        pid_ss_first=f"PID|1||{ss}~{mr}{tail}",
        # PV1-2 class, PV1-3 location (point of care^room^bed^facility), PV1-10 service.
        pv1=f"PV1|1|{patient_class}|{location}|||||||{escape(service)}",
    )


def msh(application: str, ts: str, message_type: str, control_id: str) -> str:
    """MSH with MSH-3 application, MSH-4 "GENERAL HOSPITAL", MSH-7, MSH-9, MSH-10, P, 2.5.1."""
    return (
        f"MSH|{ENCODING_CHARACTERS}|{application}|GENERAL HOSPITAL|LABSENTINEL|GENERAL HOSPITAL|"
        f"{ts}||{message_type}|{control_id}|P|2.5.1"
    )


def obx_body(
    *,
    value_type: str,
    code: str,
    name: str,
    value: str,
    unit: str,
    reference_range: str,
    flag: str,
    status: str = "F",
) -> str:
    """An OBX without its set id and OBX-14: "|NM|code^name^LN||value|unit|range|flag|||F|||".

    `value` is already HL7 text (an SN such as "<^0.5" keeps its component separator).
    `number_obx()` prefixes "OBX|<set id>"; `oru()` appends OBX-14 (collection time).
    """
    return (
        f"|{value_type}|{escape(code)}^{escape(name)}^LN||{value}|{escape(unit)}|"
        f"{escape(reference_range)}|{flag}|||{status}|||"
    )


def number_obx(bodies: list[str]) -> list[str]:
    """Prefix each body with "OBX|<set id>" (1-based)."""
    return [f"OBX|{i}{body}" for i, body in enumerate(bodies, 1)]


def oru(
    control_id: str,
    msg_ts: str,
    obs_ts: str,
    pid: str,
    pv1: str,
    placer: str,
    filler: str,
    panel: str,
    obx_lines: list[str],
) -> str:
    """An ORU^R01: MSH, PID, PV1, ORC, OBR, OBX... (every segment ends in CR).

    `obx_lines` are numbered OBX segments lacking only OBX-14, which is `obs_ts`.
    Positional arguments only: this runs once per message in the throughput path.
    """
    obs_end = obs_ts + SEGMENT_END
    return (
        f"MSH|{ENCODING_CHARACTERS}|LAB|GENERAL HOSPITAL|LABSENTINEL|GENERAL HOSPITAL|"
        f"{msg_ts}||ORU^R01^ORU_R01|{control_id}|P|2.5.1\r{pid}\r{pv1}\r"
        f"ORC|RE|{placer}|{filler}||CM\r"
        # OBR-7 observation time, OBR-22 report time, OBR-24 section, OBR-25 status.
        f"OBR|1|{placer}|{filler}|{panel}|||{obs_ts}|||||||||||||||{msg_ts}||CH|F\r"
        f"{obs_end.join(obx_lines)}{obs_end}"
    )


def rde(
    *,
    control_id: str,
    order_ts: str,
    dose_ts: str,
    patient: PatientSegments,
    ss_first: bool,
    placer: str,
    filler: str,
    give_code: str,
    give_amount: str,
    give_units: str,
    dosage_form: str,
    route: str,
    provider: str,
) -> str:
    """An RDE^O11: MSH, PID, PV1, ORC, RXE, TQ1 (timing of the give), RXR.

    `give_code` and `provider` are pre-escaped composite values.
    """
    return SEGMENT_END.join(
        (
            msh("PHARM", order_ts, "RDE^O11^RDE_O11", control_id),
            patient.pid_ss_first if ss_first else patient.pid_mr_first,
            patient.pv1,
            # ORC-1 NW, ORC-2 placer, ORC-3 filler, ORC-5 IP, ORC-9 transaction, ORC-12.
            f"ORC|NW|{placer}|{filler}||IP||||{order_ts}|||{provider}",
            # RXE-1 quantity/timing (start in component 4), RXE-2, RXE-3, RXE-5, RXE-6.
            f"RXE|^^^{dose_ts}|{give_code}|{give_amount}||{give_units}|{dosage_form}",
            f"TQ1|1||||||{dose_ts}",
            f"RXR|{route}",
            "",
        )
    )
