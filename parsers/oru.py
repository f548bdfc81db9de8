"""ORU^R01 -> LabReport (or Ignored when no OBX carries a catalogued code).

Every OBR and every OBX is read: two OBX of one code in one OBR are two results (told apart
by OBX-4 ``sub_id`` and ``occurrence``), and a catalogued OBX whose time cannot be read is a
``Rejected`` of its own rather than an error for the whole message.

Shaped for throughput, because most messages of a lab feed are ORUs:

- one pass over the segments; PID, PV1, ORC and OBR are only remembered, and read when a
  catalogued OBX needs them, so an irrelevant report costs one split per OBX;
- the OBX-3 lookup is memoised per distinct raw OBX-3 (a lab sends a few hundred codes), and
  the memo holds the finished code fields, so a catalogued OBX-3 is never cut up again;
- an OBX without repetition, subcomponent or escape characters - nearly all of them - is read
  with plain splits (``_plain_result``); any other goes through ``component``;
- consecutive OBX of a panel usually share OBX-14, so its reading is reused.
"""

from __future__ import annotations

from datetime import datetime

from parsers.config import ParserConfig
from parsers.encoding import Delimiters, component, is_plain, repetitions
from parsers.errors import ParseError
from parsers.events import Ignored, LabReport, LabResult, MessageHeader, Rejected
from parsers.patient import parse_patient
from parsers.timestamps import parse_timestamp
from parsers.values import parse_value

# (analyte, code, code_system, code_text) of a catalogued OBX-3: LabResult's first fields.
Code = tuple[str, str, str, str]
# (placer id, filler id, raw OBR-7, "OBR[n]") of an order group.
Group = tuple[str, str, str, str]

_OBX_PAD = ("",) * 15  # a split OBX is padded so that OBX-1 .. OBX-14 all exist


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


def _code(obx3: str, d: Delimiters, config: ParserConfig) -> Code | None:
    """The code fields of a catalogued OBX-3 (of the identifier that matched), else None."""
    match = catalogued_code(obx3, d, config)
    if match is None:
        return None
    analyte, pos = match
    code = component(obx3, d, pos).strip()
    return analyte, code, component(obx3, d, pos + 2).strip(), component(obx3, d, 2)


# Raw OBX-3 -> _code(...), one memo per (code map, delimiters). An entry keeps its map and
# delimiters alive, so their ids are not reused meanwhile; the config is frozen, so its code
# map is not expected to change. Both levels are bounded for junk input.
_MEMOS: dict[tuple[int, int], tuple[object, Delimiters, dict[str, Code | None]]] = {}
_MAX_MEMOS = 32
_MAX_MEMO_SIZE = 20_000
_UNSEEN = ("", "", "", "")


def _memo(config: ParserConfig, d: Delimiters) -> dict[str, Code | None]:
    codes = config.lab_codes
    key = (id(codes), id(d))
    entry = _MEMOS.get(key)
    if entry is None or entry[0] is not codes or entry[1] is not d:
        if len(_MEMOS) >= _MAX_MEMOS:
            _MEMOS.clear()
        entry = _MEMOS[key] = (codes, d, {})
    return entry[2]


def parse_oru(
    segments: list[str],
    d: Delimiters,
    header: MessageHeader,
    config: ParserConfig,
) -> LabReport | Ignored:
    """Parse an ORU^R01 whose segments (MSH first) are already split and stripped.

    Every OBX of every OBR is read; each catalogued one becomes a LabResult, or a Rejected
    (segment "OBX[n]", item = analyte) when its observation time is unusable: an unparseable
    OBX-14, or an empty OBX-14 with an unparseable OBR-7, or no time at all. A rejected OBX
    never hides the others, and a report whose catalogued OBX are all rejected is still a
    LabReport (``results=()``) so the service can dead-letter each one.

    Returns Ignored when no OBX is catalogued, without reading PID. Raises ParseError naming
    segment and field only for message-level problems: a missing PID or no accepted PID-3
    identifier.

    An OBX is a segment starting with ``OBX`` and the field separator; OBX[n] (LabResult's
    ``position`` and Rejected's ``segment``) counts every segment whose name starts with OBX.
    ``occurrence`` counts catalogued OBX of the same (upper-cased code, OBX-4) within one OBR,
    rejected ones included, so an OBX keeps its number when a neighbour cannot be read.
    """
    fs = d.field
    rep, sub, esc, cs = d.repetition, d.subcomponent, d.escape, d.component
    memo = _memo(config, d)
    unseen = _UNSEEN
    # Raw text of the first PID and PV1, of the ORC waiting for its OBR, of the current OBR
    # and of the ORC before it; a group is read at its first catalogued OBX.
    pid = pv1 = orc = obr = obr_orc = None
    group: Group | None = None
    last_time: str | None = None  # OBX-14 text last read in this group, and its reading
    observed: datetime | None = None
    failure: ParseError | None = None  # why last_time could not be read, if it could not
    seen: dict[tuple[str, str], int] = {}  # (CODE, sub_id) -> catalogued OBX so far in this OBR
    results: list[LabResult] = []
    rejected: list[Rejected] = []
    obx_count = obr_count = 0
    for seg in segments:
        name = seg[:3]
        if name == "OBX":
            obx_count += 1
            try:
                obx3 = seg.split(fs, 4)[3]
            except IndexError:
                obx3 = ""
            code = memo.get(obx3, unseen)
            if code is unseen:
                if len(memo) >= _MAX_MEMO_SIZE:
                    memo.clear()
                code = memo[obx3] = _code(obx3, d, config)
            if code is None or seg[3:4] != fs:
                continue
            if group is None:
                group = _order_group(obr, obr_orc, obr_count, d)
            position = f"OBX[{obx_count}]"
            f = seg.split(fs)
            f += _OBX_PAD
            plain = not (rep in seg or sub in seg or esc in seg)
            sub_id = f[4]  # OBX-4, nearly always empty
            if sub_id:
                sub_id = (
                    sub_id.partition(cs)[0].strip() if plain else component(sub_id, d, 1).strip()
                )
            key = (code[1].upper(), sub_id)
            occurrence = seen.get(key, 0) + 1
            seen[key] = occurrence
            time_text = f[14].partition(cs)[0] if plain else component(f[14], d, 1)
            if time_text != last_time:
                try:
                    observed = _observed_at(time_text, group, header, config, position)
                    failure = None
                except ParseError as err:
                    observed, failure = None, err
                last_time = time_text
            if observed is None:
                # Set together with observed on the group's first OBX (last_time starts None).
                assert failure is not None
                rejected.append(Rejected(position, failure.field, failure.reason, code[0]))
                continue
            if plain:
                results.append(
                    _plain_result(f, code, observed, group, d, sub_id, occurrence, position)
                )
            else:
                results.append(
                    _lab_result(f, code, observed, group, d, sub_id, occurrence, position)
                )
        elif name == "OBR":
            obr_count += 1
            obr, obr_orc, orc = seg, orc, None  # the pending ORC is this OBR's
            group = last_time = None
            if seen:
                seen = {}
        elif name == "ORC":
            orc = seg
        elif name == "PID":
            pid = pid or seg
        elif name == "PV1":
            pv1 = pv1 or seg
    if obr_count == 0 and obx_count == 0:
        # No ORDER_OBSERVATION at all: not a result report, whatever else it holds. Said
        # rather than ignored, so that a feed sending empty reports is seen by someone.
        raise ParseError("no OBR or OBX segment", "OBR", "OBR-1")
    if not results and not rejected:
        return Ignored(header, "no catalogued analyte")
    patient = parse_patient(
        None if pid is None else pid.split(fs, 4),
        None if pv1 is None else pv1.split(fs, 11),
        d,
        config,
    )
    return LabReport(header, patient, tuple(results), tuple(rejected))


def _order_group(obr: str | None, orc: str | None, obr_count: int, d: Delimiters) -> Group:
    """The group of the current OBR; all empty before the first OBR. Order ids are
    OBR-2.1/OBR-3.1, else those of the ORC just before the OBR."""
    if obr is None:
        return "", "", "", ""
    placer, filler, obr_time = _fields_2_3_7(obr, d)
    if orc is not None:
        orc_placer, orc_filler, _ = _fields_2_3_7(orc, d)
        placer = placer.strip() or orc_placer
        filler = filler.strip() or orc_filler
    return placer.strip(), filler.strip(), obr_time, f"OBR[{obr_count}]"


def _fields_2_3_7(segment: str, d: Delimiters) -> tuple[str, str, str]:
    """Component 1 of fields 2, 3 and 7 of a segment (OBR: placer id, filler id, time)."""
    f = segment.split(d.field, 8)
    f += ("",) * (8 - len(f))
    if is_plain(segment, d):
        cs = d.component
        return f[2].partition(cs)[0], f[3].partition(cs)[0], f[7].partition(cs)[0]
    return component(f[2], d, 1), component(f[3], d, 1), component(f[7], d, 1)


def _observed_at(
    time_text: str, group: Group, header: MessageHeader, config: ParserConfig, where: str
) -> datetime:
    """OBX-14 (``time_text``), else OBR-7 of the enclosing OBR, else MSH-7.

    Raises ParseError("unparseable timestamp", ..., "OBX-14" or "OBR-7") for a time that is
    present but unusable (no fallback past it: a wrong time would misplace the result in a
    window), and ParseError("no observation time", where, "OBX-14") when there is none.
    """
    tz = config.timezone
    observed = parse_timestamp(time_text, tz, where, "OBX-14")
    if observed is None:
        observed = parse_timestamp(group[2], tz, group[3] or "OBR", "OBR-7")
    if observed is None:
        observed = header.message_time
    if observed is None:
        raise ParseError("no observation time", where, "OBX-14")
    return observed


def _plain_result(
    f: list[str],
    code: Code,
    observed: datetime,
    group: Group,
    d: Delimiters,
    sub_id: str,
    occurrence: int,
    position: str,
) -> LabResult:
    """``_lab_result`` for an OBX without repetition, subcomponent or escape characters:
    component 1 of a field is then the text before the first component separator."""
    cs = d.component
    value_type = f[2].partition(cs)[0].strip().upper()
    value, comparator, value_text = parse_value(value_type, f[5], d)
    # Positional, in LabResult's field order: keywords cost a microsecond more per result.
    return LabResult(
        *code,  # analyte, code, code_system, code_text
        value_type,
        value,
        comparator,
        value_text,
        f[6].partition(cs)[0].strip(),  # unit
        f[7].partition(cs)[0].strip(),  # reference_range
        f[8].partition(cs)[0].strip(),  # abnormal_flags: a single repetition here
        f[11].partition(cs)[0].strip().upper(),  # status
        observed,
        group[0],  # placer_order_id
        group[1],  # filler_order_id
        f[1].partition(cs)[0].strip(),  # set_id
        sub_id,
        occurrence,
        position,
    )


def _lab_result(
    f: list[str],
    code: Code,
    observed: datetime,
    group: Group,
    d: Delimiters,
    sub_id: str,
    occurrence: int,
    position: str,
) -> LabResult:
    analyte, code_value, code_system, code_text = code
    value_type = component(f[2], d, 1).strip().upper()
    value, comparator, value_text = parse_value(value_type, f[5], d)
    return LabResult(
        analyte=analyte,
        code=code_value,
        code_system=code_system,
        code_text=code_text,
        value_type=value_type,
        value=value,
        comparator=comparator,
        value_text=value_text,
        unit=component(f[6], d, 1).strip(),
        reference_range=component(f[7], d, 1).strip(),
        abnormal_flags="~".join(component(r, d, 1).strip() for r in repetitions(f[8], d)),
        status=component(f[11], d, 1).strip().upper(),
        observed_at=observed,
        placer_order_id=group[0],
        filler_order_id=group[1],
        set_id=component(f[1], d, 1).strip(),
        sub_id=sub_id,
        occurrence=occurrence,
        position=position,
    )
