"""Hostile records and a planted interaction case, as raw bytes, for the safety tests.

Each hostile record is about a patient of its own, with a name and birth date that must never
show on any output (``NAME``, ``BIRTH_DATE``). The planted case is another patient's IV iron,
denosumab and a low phosphate 10 days after the iron: it must page whatever came before it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.messages import DENOSUMAB, oru, rde, ts

# When the planted phosphate was drawn; the hostile records are older than all of the case,
# so that the message clock (replay --clock messages) does not move past the case's times.
DRAWN = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
HOSTILE_AT = DRAWN - timedelta(days=90)

NAME = b"HOSTILEFAMILY^SECRETGIVEN"
BIRTH_DATE = b"19411111"
PLANTED_MRN = "MRN55555555"


def planted_case(prefix: str = "PLANT", drawn: datetime = DRAWN) -> list[bytes]:
    """Denosumab 60 days and ferric carboxymaltose 10 days before a phosphate of 1.4 mg/dL
    (RDE, RDE, ORU)."""
    return [
        rde(PLANTED_MRN, drawn - timedelta(days=60), drug=DENOSUMAB, route="SC",
            control_id=f"{prefix}-DENO"),
        rde(PLANTED_MRN, drawn - timedelta(days=10), control_id=f"{prefix}-IRON"),
        oru(PLANTED_MRN, drawn, value="1.4", control_id=f"{prefix}-PHOS"),
    ]  # fmt: skip


def hostile_oru(
    *,
    control_id: bytes = b"HOSTILE-ORU",
    pid3: bytes = b"HX00000001^^^GH^MR",
    name: bytes = NAME,
    pv13: bytes = b"4W^101^A^GH",
    obx5: bytes = b"1.2",
    obx6: bytes = b"mg/dL",
    padding: bytes = b"",
) -> bytes:
    """A relevant ORU (a low phosphate) of the hostile patient, with one field replaced."""
    at = ts(HOSTILE_AT).encode()
    segments = [
        b"MSH|^~\\&|LAB|GENERAL HOSPITAL|LABSENTINEL|GH|" + at + b"||ORU^R01^ORU_R01|"
        + control_id + b"|P|2.5.1",
        b"PID|1||" + pid3 + b"||" + name + b"||" + BIRTH_DATE + b"|F",
        b"PV1|1|I|" + pv13 + b"||||||MED",
        b"ORC|RE|HORD1|HORD1F",
        b"OBR|1|HORD1|HORD1F|PHOS^Phosphate^L|||" + at,
        b"OBX|1|NM|2777-1^Phosphate^LN||" + obx5 + b"|" + obx6 + b"|2.5-4.5|L|||F|||" + at,
    ]  # fmt: skip
    if padding:
        segments.append(b"NTE|1||" + padding)
    return b"\r".join(segments)


def hostile_rde(
    *,
    control_id: bytes = b"HOSTILE-RDE",
    rxe2: bytes = b"1435169^Ferric carboxymaltose 750 mg/15 mL^RXNORM",
) -> bytes:
    """An IV iron order of the hostile patient, with one field replaced."""
    at = ts(HOSTILE_AT).encode()
    segments = [
        b"MSH|^~\\&|PHARM|GENERAL HOSPITAL|LABSENTINEL|GH|" + at + b"||RDE^O11^RDE_O11|"
        + control_id + b"|P|2.5.1",
        b"PID|1||HX00000002^^^GH^MR||" + NAME + b"||" + BIRTH_DATE + b"|F",
        b"PV1|1|I|4W^101^A^GH||||||MED",
        b"ORC|NW|HRX1|HRX1F||IP||||" + at,
        b"RXE|^^^" + at + b"|" + rxe2 + b"|750||mg",
        b"RXR|IV",
        b"TQ1|1||||||" + at,
    ]  # fmt: skip
    return b"\r".join(segments)


def only_msh() -> bytes:
    at = ts(HOSTILE_AT).encode()
    msh = b"MSH|^~\\&|LAB|GENERAL HOSPITAL|LABSENTINEL|GH|" + at
    return msh + b"||ORU^R01^ORU_R01|ONLYMSH|P|2.5.1"


def feed_file(first: bytes, rest: list[bytes]) -> bytes:
    """Messages as a replay file: blank-line separated, CR segments."""
    return b"\r\r".join([first, *rest]) + b"\r"


# Text no output may show: the hostile patient's name parts and birth date, the planted
# patient's (tests.messages), and what SQLAlchemy prints with a statement's values.
FORBIDDEN_ON_OUTPUT = (
    "Traceback",
    "[parameters:",
    "[SQL:",
    "HOSTILEFAMILY",
    "SECRETGIVEN",
    BIRTH_DATE.decode(),
    "TESTPATIENT",
    "19500101",
)
