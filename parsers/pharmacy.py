"""RDE^O11 / RDE^O01 (pharmacy encoded order) and RAS^O17 (administration) -> PharmacyOrder.

Only the first order group (the first ORC and the segments up to the next ORC) is read. The
drug is classified before anything else, so orders for drugs LabSentinel does not track cost
one segment split and return Ignored.
"""

from __future__ import annotations

from typing import TypedDict

from parsers.config import ParserConfig
from parsers.encoding import Delimiters, component, field, is_plain
from parsers.errors import ParseError
from parsers.events import Ignored, MedicationOrder, MessageHeader, PharmacyOrder
from parsers.patient import parse_patient
from parsers.timestamps import parse_timestamp

# RXA-20 completion status values meaning no drug reached the patient (HL7 table 0322).
_NOT_GIVEN = frozenset({"RE", "NA"})


def _first(
    segments: list[str], name: str, fs: str, start: int = 1, stop: int | None = None
) -> list[str] | None:
    """The first segment called ``name`` in ``segments[start:stop]``, split into fields."""
    tag = name + fs
    for seg in segments[start:stop]:
        if seg.startswith(tag) or seg == name:
            return seg.split(fs)
    return None


def _order_group(segments: list[str], fs: str) -> tuple[int, int] | None:
    """Index of the first ORC and of the next ORC (or the end); None without an ORC."""
    tag = "ORC" + fs
    start = None
    for i, seg in enumerate(segments):
        if seg.startswith(tag) or seg == "ORC":
            if start is None:
                start = i
            else:
                return start, i
    return None if start is None else (start, len(segments))


def _classify(code_field: str, d: Delimiters, config: ParserConfig) -> str | None:
    """Catalog key for a CE/CWE drug code (codes .1/.4, names .2/.5); None if untracked."""
    if is_plain(code_field, d):  # the usual case: components are the split pieces
        parts = code_field.split(d.component, 5)
        parts += ("", "", "", "")
        codes = list(filter(None, (parts[0].strip(), parts[3].strip())))
        names = list(filter(None, (parts[1].strip(), parts[4].strip())))
        return config.classify_drug(codes, names) if codes or names else None
    codes = [
        c for c in (component(code_field, d, 1).strip(), component(code_field, d, 4).strip()) if c
    ]
    names = [
        n for n in (component(code_field, d, 2).strip(), component(code_field, d, 5).strip()) if n
    ]
    if not codes and not names:
        return None
    return config.classify_drug(codes, names)


def _patient_fields(segments: list[str], fs: str) -> tuple[list[str] | None, list[str] | None]:
    return _first(segments, "PID", fs), _first(segments, "PV1", fs)


def parse_rde(
    segments: list[str], d: Delimiters, header: MessageHeader, config: ParserConfig
) -> PharmacyOrder | Ignored:
    """Parse an RDE^O11 (or legacy RDE^O01).

    dose_at is TQ1-7, else RXE-1.4 (v2.3/2.4 timing), else ORC-15, else ORC-9, else MSH-7;
    end_at is TQ1-8, else RXE-1.5. Raises ParseError naming segment and field when RXE or ORC
    is missing, a timestamp is unusable, no dose time exists, or PID-3 is unusable.
    """
    fs = d.field
    rxe = _first(segments, "RXE", fs)
    if rxe is None:
        raise ParseError("missing RXE segment", "RXE", "RXE-2")
    give_code = field(rxe, 2)
    drug = _classify(give_code, d, config)
    if drug is None:
        return Ignored(header, "drug not in catalog")
    group = _order_group(segments, fs)
    if group is None:
        raise ParseError("missing ORC segment", "ORC", "ORC-1")
    orc = segments[group[0]].split(fs)
    tq1 = _first(segments, "TQ1", fs, group[0] + 1, group[1])
    rxr = _first(segments, "RXR", fs, group[0] + 1, group[1])
    rxe1 = field(rxe, 1)

    dose_at = None
    end_at = None
    if tq1 is not None:
        dose_at = parse_timestamp(component(field(tq1, 7), d, 1), config.timezone, "TQ1", "TQ1-7")
        end_at = parse_timestamp(component(field(tq1, 8), d, 1), config.timezone, "TQ1", "TQ1-8")
    if dose_at is None:
        dose_at = parse_timestamp(component(rxe1, d, 4, 1), config.timezone, "RXE", "RXE-1.4")
    if end_at is None:
        end_at = parse_timestamp(component(rxe1, d, 5, 1), config.timezone, "RXE", "RXE-1.5")
    if dose_at is None:
        dose_at = parse_timestamp(component(field(orc, 15), d, 1), config.timezone, "ORC", "ORC-15")
    if dose_at is None:
        dose_at = parse_timestamp(component(field(orc, 9), d, 1), config.timezone, "ORC", "ORC-9")
    if dose_at is None:
        dose_at = header.message_time
    if dose_at is None:
        raise ParseError("no dose time", "TQ1", "TQ1-7")

    order = MedicationOrder(
        **_order_fields(orc, give_code, rxr, d),
        drug=drug,
        dose_at=dose_at,
        end_at=end_at,
        give_amount=component(field(rxe, 3), d, 1).strip(),
        give_units=component(field(rxe, 5), d, 1).strip(),
        ordering_provider=(
            component(field(orc, 12), d, 1).strip() or component(field(rxe, 13), d, 1).strip()
        ),
    )
    pid, pv1 = _patient_fields(segments, fs)
    return PharmacyOrder(header, parse_patient(pid, pv1, d, config), order)


class _OrderFields(TypedDict):
    order_control: str
    order_status: str
    placer_order_id: str
    filler_order_id: str
    drug_code: str
    drug_code_system: str
    drug_text: str
    route: str


def _order_fields(
    orc: list[str], give_code: str, rxr: list[str] | None, d: Delimiters
) -> _OrderFields:
    """What an RDE and an RAS read alike: ORC ids and control, the give code, RXR-1."""
    return _OrderFields(
        order_control=component(field(orc, 1), d, 1).strip().upper(),
        order_status=component(field(orc, 5), d, 1).strip().upper(),
        placer_order_id=component(field(orc, 2), d, 1).strip(),
        filler_order_id=component(field(orc, 3), d, 1).strip(),
        drug_code=component(give_code, d, 1).strip(),
        drug_code_system=component(give_code, d, 3).strip(),
        drug_text=component(give_code, d, 2).strip(),
        route=component(field(rxr, 1), d, 1).strip().upper() if rxr is not None else "",
    )


def parse_ras(
    segments: list[str], d: Delimiters, header: MessageHeader, config: ParserConfig
) -> PharmacyOrder | Ignored:
    """Parse an RAS^O17: the first RXA of the first order group is the administration.

    The drug comes from RXA-5, dose_at from RXA-3 (administration start), end_at from RXA-4,
    amount and units from RXA-6 and RXA-7.1, route from the RXR after the RXA. An RXA whose
    completion status (RXA-20) is RE (refused) or NA (not administered) gives Ignored: no
    drug reached the patient. ORC is optional here (ids then empty). Raises ParseError naming
    segment and field when RXA or RXA-3 is missing or unusable, or PID-3 is unusable.
    """
    fs = d.field
    group = _order_group(segments, fs)
    start, stop = (group[0] + 1, group[1]) if group is not None else (1, None)
    rxa_index = None
    for i in range(start, len(segments) if stop is None else stop):
        if segments[i].startswith("RXA" + fs):
            rxa_index = i
            break
    if rxa_index is None:
        raise ParseError("missing RXA segment", "RXA", "RXA-5")
    rxa = segments[rxa_index].split(fs)
    give_code = field(rxa, 5)
    drug = _classify(give_code, d, config)
    if drug is None:
        return Ignored(header, "drug not in catalog")
    if component(field(rxa, 20), d, 1).strip().upper() in _NOT_GIVEN:
        return Ignored(header, "administration not given")
    dose_at = parse_timestamp(component(field(rxa, 3), d, 1), config.timezone, "RXA", "RXA-3")
    if dose_at is None:
        raise ParseError("missing administration time", "RXA", "RXA-3")
    end_at = parse_timestamp(component(field(rxa, 4), d, 1), config.timezone, "RXA", "RXA-4")
    orc = segments[group[0]].split(fs) if group is not None else []
    rxr = _first(segments, "RXR", fs, rxa_index + 1, stop)
    order = MedicationOrder(
        **_order_fields(orc, give_code, rxr, d),
        drug=drug,
        dose_at=dose_at,
        end_at=end_at,
        give_amount=component(field(rxa, 6), d, 1).strip(),
        give_units=component(field(rxa, 7), d, 1).strip(),
        ordering_provider=component(field(orc, 12), d, 1).strip(),
        administered=True,
    )
    pid, pv1 = _patient_fields(segments, fs)
    return PharmacyOrder(header, parse_patient(pid, pv1, d, config), order)
