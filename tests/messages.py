"""Small HL7 v2.5.1 messages for tests, built from templates (hl7apy checks them elsewhere)."""

from __future__ import annotations

import itertools
from datetime import datetime

_ids = itertools.count(1)


def ts(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + moment.strftime("%z")


def _msh(kind: str, sent: datetime, control_id: str | None, app: str) -> str:
    control_id = control_id or f"T{next(_ids):08d}"
    return (
        f"MSH|^~\\&|{app}|GENERAL HOSPITAL|LABSENTINEL|GH|{ts(sent)}||{kind}|{control_id}|P|2.5.1"
    )


def _pid(mrn: str) -> str:
    return (
        f"PID|1||{mrn}^^^GH^MR~999-00-0000^^^SSA^SS||TESTPATIENT^ALPHA||19500101|F\r"
        "PV1|1|I|4W^412^B^GH||||||MED"
    )


def oru(
    mrn: str,
    observed: datetime,
    *,
    code: str = "2777-1",
    name: str = "Phosphate",
    value: str = "1.4",
    unit: str = "mg/dL",
    status: str = "F",
    value_type: str = "NM",
    order: str = "",
    sent: datetime | None = None,
    control_id: str | None = None,
    ref: str = "2.5-4.5",
) -> bytes:
    order = order or f"ORD{next(_ids):06d}"
    segments = [
        _msh("ORU^R01^ORU_R01", sent or observed, control_id, "LAB"),
        _pid(mrn),
        f"ORC|RE|{order}|{order}F",
        f"OBR|1|{order}|{order}F|PHOS^Phosphate^L|||{ts(observed)}",
        f"OBX|1|{value_type}|{code}^{name}^LN||{value}|{unit}|{ref}|L|||{status}|||{ts(observed)}",
    ]
    return "\r".join(segments).encode()


def rde(
    mrn: str,
    dose_at: datetime,
    *,
    drug: str = "1435169^Ferric carboxymaltose 750 mg/15 mL^RXNORM",
    route: str = "IV",
    control: str = "NW",
    order: str = "",
    sent: datetime | None = None,
    control_id: str | None = None,
) -> bytes:
    order = order or f"RX{next(_ids):06d}"
    segments = [
        _msh("RDE^O11^RDE_O11", sent or dose_at, control_id, "PHARM"),
        _pid(mrn),
        f"ORC|{control}|{order}|{order}F||IP||||{ts(sent or dose_at)}|||1234567^DOC^ALPHA^^^^^^NPI",
        f"RXE|^^^{ts(dose_at)}|{drug}|750||mg",
        f"RXR|{route}",
        f"TQ1|1||||||{ts(dose_at)}",
    ]
    return "\r".join(segments).encode()


DENOSUMAB = "993452^Prolia 60 mg/mL^RXNORM"
ZOLEDRONIC = "^Reclast 5 mg/100 mL^L"
FERROUS_SULFATE = "LF0101^Ferrous sulfate 325 mg^L"
