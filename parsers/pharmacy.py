"""RDE^O11 / RDE^O01 (pharmacy encoded order) and RAS^O17 (administration) -> PharmacyOrder.

Every group of a message is read, in message order:

- RDE: each ORDER group (an ORC and the segments up to the next ORC) gives one item per RXE
  in it, timed by the group's TQ1 and routed by its RXR. A conformant group has one RXE; a
  group that carries several is cut before each further RXE, so that every RXE is read once
  and takes the TQ1/RXR nearest to it.
- RAS: each RXA is an administration, with the last ORC before it (if any) and the first RXR
  after it before the next ORC (ADMINISTRATION is ``{RXA} RXR``: consecutive RXA share the RXR
  that follows them).

Drugs are classified before anything else, so RXE/RXA of drugs LabSentinel does not track
cost one segment split each, and a message without any catalogued one returns Ignored without
reading PID. A catalogued item that cannot be read (an unusable timestamp, no dose time)
becomes a ``Rejected`` naming it (``RXE[n]``/``RXA[n]``, n counting every RXE/RXA segment of
the message) and the field; the other items still come through.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from parsers.config import ParserConfig
from parsers.encoding import Delimiters, component, field, is_plain
from parsers.errors import ParseError
from parsers.events import (
    Ignored,
    MedicationOrder,
    MessageHeader,
    PharmacyOrder,
    Rejected,
)
from parsers.patient import parse_patient
from parsers.timestamps import parse_timestamp


def _first(
    segments: list[str], name: str, fs: str, start: int = 1, stop: int | None = None
) -> list[str] | None:
    """The first segment called ``name`` in ``segments[start:stop]``, split into fields."""
    tag = name + fs
    for seg in segments[start:stop]:
        if seg.startswith(tag) or seg == name:
            return seg.split(fs)
    return None


def _is(seg: str, name: str, fs: str) -> bool:
    return seg.startswith(name) and (len(seg) == 3 or seg[3] == fs)


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


# (segment index of the RXE, "RXE[n]", drug key, raw RXE-2) of a catalogued RXE.
_Catalogued = tuple[int, str, str, str]


def parse_rde(
    segments: list[str], d: Delimiters, header: MessageHeader, config: ParserConfig
) -> PharmacyOrder | Ignored:
    """Parse an RDE^O11 (or legacy RDE^O01): one MedicationOrder per catalogued RXE.

    Per item, dose_at is TQ1-7, else RXE-1.4 (v2.3/2.4 timing), else ORC-15, else ORC-9, else
    MSH-7; end_at is TQ1-8, else RXE-1.5. An unusable timestamp in any of these, no dose time
    at all, or an RXE before the first ORC makes that item a Rejected. Returns Ignored when no
    RXE is catalogued. Raises ParseError naming segment and field for message-level problems:
    no RXE at all, catalogued RXE but no ORC anywhere in the message (ORC is required), a
    missing PID or no accepted PID-3 identifier.
    """
    fs = d.field
    ends = (fs, "")  # what follows a segment name: the field separator, or nothing
    # Indexes of every ORC and RXE, in message order: together they delimit the items.
    marks: list[int] = []
    catalogued: list[_Catalogued] = []
    rxe_count = 0
    for i, seg in enumerate(segments):
        name = seg[:3]
        if name == "RXE" and seg[3:4] in ends:
            marks.append(i)
            rxe_count += 1
            parts = seg.split(fs, 3)
            give_code = parts[2] if len(parts) > 2 else ""
            drug = _classify(give_code, d, config)
            if drug is not None:
                catalogued.append((i, f"RXE[{rxe_count}]", drug, give_code))
        elif name == "ORC" and seg[3:4] in ends:
            marks.append(i)
    if rxe_count == 0:
        raise ParseError("missing RXE segment", "RXE", "RXE-2")
    if not catalogued:
        return Ignored(header, "drug not in catalog")
    if len(marks) == rxe_count:
        raise ParseError("missing ORC segment", "ORC", "ORC-1")

    orders: list[MedicationOrder] = []
    rejected: list[Rejected] = []
    for index, where, drug, give_code in catalogued:
        k = marks.index(index)
        orc_index = next((m for m in reversed(marks[:k]) if segments[m][:3] == "ORC"), None)
        if orc_index is None:
            rejected.append(Rejected(where, "ORC-1", "order outside an order group", drug))
            continue
        # TQ1/RXR belong to the RXE from its ORC (the group's first RXE) or from itself (a
        # further RXE of the same group) up to the next ORC or RXE.
        start = orc_index + 1 if marks[k - 1] == orc_index else index
        stop = marks[k + 1] if k + 1 < len(marks) else len(segments)
        try:
            orders.append(
                _rde_order(
                    segments, index, orc_index, start, stop, give_code, drug, d, header, config
                )
            )
        except ParseError as err:
            rejected.append(Rejected(where, err.field, err.reason, drug))
    pid, pv1 = _patient_fields(segments, fs)
    patient = parse_patient(pid, pv1, d, config)
    return PharmacyOrder(header, patient, tuple(orders), tuple(rejected))


def _rde_order(
    segments: list[str],
    index: int,
    orc_index: int,
    start: int,
    stop: int,
    give_code: str,
    drug: str,
    d: Delimiters,
    header: MessageHeader,
    config: ParserConfig,
) -> MedicationOrder:
    """The MedicationOrder of one RXE. Raises ParseError naming the unusable field."""
    fs = d.field
    rxe = segments[index].split(fs)
    orc = segments[orc_index].split(fs)
    tq1 = _first(segments, "TQ1", fs, start, stop)
    rxr = _first(segments, "RXR", fs, start, stop)
    rxe1 = field(rxe, 1)
    tz = config.timezone

    dose_at: datetime | None = None
    end_at: datetime | None = None
    if tq1 is not None:
        dose_at = parse_timestamp(component(field(tq1, 7), d, 1), tz, "TQ1", "TQ1-7")
        end_at = parse_timestamp(component(field(tq1, 8), d, 1), tz, "TQ1", "TQ1-8")
    if dose_at is None:
        dose_at = parse_timestamp(component(rxe1, d, 4, 1), tz, "RXE", "RXE-1.4")
    if end_at is None:
        end_at = parse_timestamp(component(rxe1, d, 5, 1), tz, "RXE", "RXE-1.5")
    if dose_at is None:
        dose_at = parse_timestamp(component(field(orc, 15), d, 1), tz, "ORC", "ORC-15")
    if dose_at is None:
        dose_at = parse_timestamp(component(field(orc, 9), d, 1), tz, "ORC", "ORC-9")
    if dose_at is None:
        dose_at = header.message_time
    if dose_at is None:
        raise ParseError("no dose time", "TQ1", "TQ1-7")
    return MedicationOrder(
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
    """Parse an RAS^O17: one administered MedicationOrder per catalogued RXA.

    The drug comes from RXA-5, dose_at from RXA-3 (administration start, required), end_at
    from RXA-4, amount and units from RXA-6 and RXA-7.1, completion_status from RXA-20
    (upper-cased), route from the first RXR after the RXA before the next ORC, order ids and
    control from the last ORC before the RXA (empty without one). Administrations with
    RXA-20 NA (not administered) or RE (refused) are returned too: the clinical core opens no
    window for them, and keeping them keeps the audit. An empty or unusable RXA-3, or an
    unusable RXA-4, makes that RXA a Rejected. Returns Ignored when no RXA is catalogued.
    Raises ParseError naming segment and field when there is no RXA at all, PID is missing or
    PID-3 has no accepted identifier.
    """
    fs = d.field
    tz = config.timezone
    orders: list[MedicationOrder] = []
    rejected: list[Rejected] = []
    orc: list[str] = []
    rxa_count = 0
    for i, seg in enumerate(segments):
        if _is(seg, "ORC", fs):
            orc = seg.split(fs)
            continue
        if not _is(seg, "RXA", fs):
            continue
        rxa_count += 1
        rxa = seg.split(fs)
        give_code = field(rxa, 5)
        drug = _classify(give_code, d, config)
        if drug is None:
            continue
        where = f"RXA[{rxa_count}]"
        try:
            dose_at = parse_timestamp(component(field(rxa, 3), d, 1), tz, where, "RXA-3")
            if dose_at is None:
                raise ParseError("missing administration time", where, "RXA-3")
            end_at = parse_timestamp(component(field(rxa, 4), d, 1), tz, where, "RXA-4")
        except ParseError as err:
            rejected.append(Rejected(where, err.field, err.reason, drug))
            continue
        rxr = None
        for later in segments[i + 1 :]:
            if _is(later, "ORC", fs):
                break
            if _is(later, "RXR", fs):
                rxr = later.split(fs)
                break
        orders.append(
            MedicationOrder(
                **_order_fields(orc, give_code, rxr, d),
                drug=drug,
                dose_at=dose_at,
                end_at=end_at,
                give_amount=component(field(rxa, 6), d, 1).strip(),
                give_units=component(field(rxa, 7), d, 1).strip(),
                ordering_provider=component(field(orc, 12), d, 1).strip(),
                administered=True,
                completion_status=component(field(rxa, 20), d, 1).strip().upper(),
            )
        )
    if rxa_count == 0:
        raise ParseError("missing RXA segment", "RXA", "RXA-5")
    if not orders and not rejected:
        return Ignored(header, "drug not in catalog")
    pid, pv1 = _patient_fields(segments, fs)
    patient = parse_patient(pid, pv1, d, config)
    return PharmacyOrder(header, patient, tuple(orders), tuple(rejected))
