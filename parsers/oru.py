"""ORU^R01 -> LabReport (or Ignored when no OBX carries a catalogued code)."""

from __future__ import annotations

from datetime import datetime

from parsers.config import ParserConfig
from parsers.encoding import Delimiters, component, field, repetitions
from parsers.errors import ParseError
from parsers.events import Ignored, LabReport, LabResult, MessageHeader
from parsers.patient import parse_patient
from parsers.timestamps import parse_timestamp
from parsers.values import parse_value


def catalogued_code(obx3: str, d: Delimiters, config: ParserConfig) -> tuple[str, int] | None:
    """Return ``(analyte, position)`` for a raw OBX-3: position 1 if OBX-3.1 matched, 4 if the
    alternate identifier OBX-3.4 did; None when neither is in ``config.lab_codes``.

    Codes are stripped and upper-cased before lookup. Never raises.
    """
    codes = config.lab_codes
    analyte = codes.get(component(obx3, d, 1).strip().upper())
    if analyte is not None:
        return analyte, 1
    if d.component in obx3:
        analyte = codes.get(component(obx3, d, 4).strip().upper())
        if analyte is not None:
            return analyte, 4
    return None


def has_catalogued_result(segments: list[str], d: Delimiters, config: ParserConfig) -> bool:
    """Cheap pre-filter: does any OBX-3 carry a catalogued code? Never raises."""
    tag = "OBX" + d.field
    fs = d.field
    for seg in segments:
        if seg.startswith(tag):
            parts = seg.split(fs, 4)
            if len(parts) > 3 and catalogued_code(parts[3], d, config) is not None:
                return True
    return False


def parse_oru(
    segments: list[str],
    d: Delimiters,
    header: MessageHeader,
    config: ParserConfig,
) -> LabReport | Ignored:
    """Parse an ORU^R01 whose segments (MSH first) are already split and stripped.

    Returns Ignored when no OBX is catalogued, without reading PID. Raises ParseError naming
    segment and field for a missing/unusable PID-3 or an unusable observation time.
    """
    if not has_catalogued_result(segments, d, config):
        return Ignored(header, "no catalogued analyte")
    fs = d.field
    pid: list[str] | None = None
    pv1: list[str] | None = None
    results: list[LabResult] = []
    # Order ids of the ORC waiting for its OBR, and of the current OBR group.
    orc_ids = ("", "")
    placer = filler = ""
    obr_time_raw = ""
    obr_name = ""
    obx_count = obr_count = 0
    for seg in segments[1:]:
        name = seg[:3]
        if name == "OBX":
            obx_count += 1
            f = seg.split(fs)
            obx3 = field(f, 3)
            match = catalogued_code(obx3, d, config)
            if match is None:
                continue
            where = f"OBX[{obx_count}]"
            observed = _observed_at(f, obr_time_raw, obr_name, header, d, config, where)
            results.append(_lab_result(f, match, observed, placer, filler, d))
        elif name == "OBR":
            obr_count += 1
            f = seg.split(fs)
            placer = component(field(f, 2), d, 1).strip() or orc_ids[0]
            filler = component(field(f, 3), d, 1).strip() or orc_ids[1]
            orc_ids = ("", "")
            obr_time_raw = component(field(f, 7), d, 1)
            obr_name = f"OBR[{obr_count}]"
        elif name == "ORC":
            f = seg.split(fs)
            orc_ids = (component(field(f, 2), d, 1).strip(), component(field(f, 3), d, 1).strip())
        elif name == "PID" and pid is None:
            pid = seg.split(fs)
        elif name == "PV1" and pv1 is None:
            pv1 = seg.split(fs)
    patient = parse_patient(pid, pv1, d, config)
    return LabReport(header=header, patient=patient, results=tuple(results))


def _observed_at(
    f: list[str],
    obr_time_raw: str,
    obr_name: str,
    header: MessageHeader,
    d: Delimiters,
    config: ParserConfig,
    where: str,
) -> datetime:
    """OBX-14, else OBR-7 of the enclosing OBR, else MSH-7. Raises ParseError."""
    tz = config.timezone
    observed = parse_timestamp(component(field(f, 14), d, 1), tz, where, "OBX-14")
    if observed is None:
        observed = parse_timestamp(obr_time_raw, tz, obr_name or "OBR", "OBR-7")
    if observed is None:
        observed = header.message_time
    if observed is None:
        raise ParseError("no observation time", where, "OBX-14")
    return observed


def _lab_result(
    f: list[str],
    match: tuple[str, int],
    observed: datetime,
    placer: str,
    filler: str,
    d: Delimiters,
) -> LabResult:
    analyte, pos = match
    obx3 = field(f, 3)
    value_type = component(field(f, 2), d, 1).strip().upper()
    value, comparator, value_text = parse_value(value_type, field(f, 5), d)
    return LabResult(
        analyte=analyte,
        code=component(obx3, d, pos).strip(),
        code_system=component(obx3, d, pos + 2).strip(),
        code_text=component(obx3, d, 2),
        value_type=value_type,
        value=value,
        comparator=comparator,
        value_text=value_text,
        unit=component(field(f, 6), d, 1).strip(),
        reference_range=component(field(f, 7), d, 1).strip(),
        abnormal_flags="~".join(component(r, d, 1).strip() for r in repetitions(field(f, 8), d)),
        status=component(field(f, 11), d, 1).strip().upper(),
        observed_at=observed,
        placer_order_id=placer,
        filler_order_id=filler,
        set_id=component(field(f, 1), d, 1).strip(),
    )
