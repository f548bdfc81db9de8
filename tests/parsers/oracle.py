"""hl7apy as the reference parser: navigation helpers that return raw (still escaped) ER7.

hl7apy keeps a value's ER7 text as sent (it does not decode escapes when parsing) and lists
only the components that are present, named ``<TYPE>_<n>``; a field of a primitive type has a
single unnamed component. These helpers hide that so a test can ask for "PID-3 rep 2, .4.1".
"""

from __future__ import annotations

from typing import Any

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message


def oracle_parse(text: str) -> Any:
    """Parse with hl7apy: flat segments (no groups), tolerant validation, CR-only endings."""
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    return parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)


def segments(message: Any, name: str) -> list[Any]:
    """All segments called ``name``, in message order (hl7apy may file TQ1 anywhere under
    groups when find_groups=True; with find_groups=False every segment is a direct child)."""
    return [child for child in message.children if child.name == name]


def reps(segment: Any, n: int) -> list[Any]:
    """The repetitions (hl7apy Field objects) of field ``n`` of a segment."""
    want = f"{segment.name}_{n}"
    return [child for child in segment.children if child.name == want]


def _indexed(element: Any, i: int) -> Any | None:
    """Child number ``i`` (1-based) of a composite element; for an element whose children are
    unnamed (primitive type), the element itself when i == 1."""
    children = list(element.children)
    named = [c for c in children if c.name and c.name.rsplit("_", 1)[-1].isdigit()]
    if not named:
        if len(children) > 1:  # a primitive field that was sent with components anyway
            return children[i - 1] if i <= len(children) else None
        return element if i == 1 else None
    for child in named:
        if int(child.name.rsplit("_", 1)[1]) == i:
            return child
    return None


def raw(segment: Any, n: int, c: int | None = None, s: int | None = None, rep: int = 0) -> str:
    """Raw ER7 text of field n (repetition ``rep``), component c, subcomponent s; "" if absent."""
    fields = reps(segment, n)
    if rep >= len(fields):
        return ""
    element: Any = fields[rep]
    for index in (c, s):
        if index is None:
            break
        found = _indexed(element, index)
        if found is None:
            return ""
        element = found
    return str(element.to_er7())


# --- An independent reading of a message through hl7apy, shaped like our events. -------------
#
# Only navigation comes from hl7apy; escape decoding uses parsers.encoding.unescape (hl7apy has
# no decoder). The hypothesis suite checks unescape separately against hl7apy's *encoder*.

from datetime import datetime  # noqa: E402

from parsers import ParseError, ParserConfig  # noqa: E402
from parsers.encoding import Delimiters, unescape  # noqa: E402
from parsers.timestamps import parse_timestamp  # noqa: E402


def delimiters(message: Any) -> Delimiters:
    enc = message.encoding_chars
    return Delimiters(
        enc["FIELD"], enc["COMPONENT"], enc["REPETITION"], enc["ESCAPE"], enc["SUBCOMPONENT"]
    )


def text(message: Any, segment: Any, n: int, c: int = 1, s: int = 1, rep: int = 0) -> str:
    """Unescaped, stripped value of segment-n.c.s as hl7apy splits it."""
    return unescape(raw(segment, n, c, s, rep), delimiters(message)).strip()


def _ts(
    message: Any, segment: Any, n: int, config: ParserConfig, c: int = 1, s: int = 1
) -> datetime | None:
    return parse_timestamp(text(message, segment, n, c, s), config.timezone, "x", "x")


def expected_header(m: Any, config: ParserConfig) -> dict[str, Any]:
    msh = segments(m, "MSH")[0]
    kind = text(m, msh, 9, 1).upper()
    trigger = text(m, msh, 9, 2).upper()
    return {
        "message_type": f"{kind}^{trigger}" if trigger else kind,
        "control_id": text(m, msh, 10),
        "sending_application": text(m, msh, 3),
        "sending_facility": text(m, msh, 4),
        "message_time": _ts(m, msh, 7, config),
        "version": text(m, msh, 12),
    }


def expected_patient(m: Any, config: ParserConfig) -> dict[str, Any] | None:
    """The Patient fields, or None when PID-3 has no accepted identifier (a ParseError)."""
    pid = segments(m, "PID")[0]
    types = {t.upper() for t in config.identifier_types}
    wanted = [a.upper() for a in config.identifier_authorities]
    accepted = []
    for i in range(len(reps(pid, 3))):
        ident = text(m, pid, 3, 1, 1, i)
        authority = text(m, pid, 3, 4, 1, i)
        id_type = text(m, pid, 3, 5, 1, i)
        if not ident:
            continue
        if types and id_type.upper() not in types:
            continue
        if wanted and authority.upper() not in wanted:
            continue
        accepted.append((ident, authority, id_type))
    if not accepted:
        return None
    # earliest listed authority first; sorted() is stable, so then the first repetition
    if wanted:
        accepted.sort(key=lambda c: wanted.index(c[1].upper()))
    chosen = accepted[0]
    pv1s = segments(m, "PV1")
    loc = fac = svc = ""
    if pv1s:
        pv1 = pv1s[0]
        loc = "/".join(p for p in (text(m, pv1, 3, i) for i in (1, 2, 3)) if p)
        fac = text(m, pv1, 3, 4)
        svc = text(m, pv1, 10)
    return {
        "id": chosen[0],
        "authority": chosen[1],
        "id_type": chosen[2],
        "location": loc,
        "facility": fac,
        "service": svc,
    }


def expected_results(
    m: Any, config: ParserConfig
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, str]]]:
    """One dict per readable catalogued OBX (order ids and times resolved like the spec says)
    and one (segment, field, reason, analyte) per catalogued OBX whose time is unusable."""
    header_time = expected_header(m, config)["message_time"]
    out = []
    rejected = []
    orc_ids = ("", "")
    placer = filler = ""
    obr = None
    obx_number = 0
    counts: dict[tuple[str, str], int] = {}
    for seg in m.children:
        if seg.name == "ORC":
            orc_ids = (text(m, seg, 2), text(m, seg, 3))
        elif seg.name == "OBR":
            placer = text(m, seg, 2) or orc_ids[0]
            filler = text(m, seg, 3) or orc_ids[1]
            orc_ids = ("", "")
            obr = seg
            counts = {}
        elif seg.name == "OBX":
            obx_number += 1
            pos = 1
            analyte = config.lab_codes.get(text(m, seg, 3, 1).upper())
            if analyte is None:
                pos = 4
                analyte = config.lab_codes.get(text(m, seg, 3, 4).upper())
            if analyte is None:
                continue
            code = text(m, seg, 3, pos)
            sub_id = text(m, seg, 4)
            counts[(code.upper(), sub_id)] = counts.get((code.upper(), sub_id), 0) + 1
            where = f"OBX[{obx_number}]"
            # OBX-14, else OBR-7, else MSH-7; a time that is present but bad is not skipped
            tz = config.timezone
            try:
                observed = parse_timestamp(text(m, seg, 14), tz, where, "OBX-14")
                if observed is None and obr is not None:
                    observed = parse_timestamp(text(m, obr, 7), tz, where, "OBR-7")
                observed = observed or header_time
            except ParseError as err:
                rejected.append((where, err.field, err.reason, analyte))
                continue
            if observed is None:
                rejected.append((where, "OBX-14", "no observation time", analyte))
                continue
            out.append(
                {
                    "analyte": analyte,
                    "code": code,
                    "code_system": text(m, seg, 3, pos + 2),
                    "value_type": text(m, seg, 2).upper(),
                    "obx5": [
                        [unescape(raw(seg, 5, c, 1, r), delimiters(m)) for c in (1, 2, 3, 4)]
                        for r in range(len(reps(seg, 5)))
                    ],
                    "unit": text(m, seg, 6, 1),
                    "status": text(m, seg, 11).upper(),
                    "observed_at": observed,
                    "placer_order_id": placer,
                    "filler_order_id": filler,
                    "set_id": text(m, seg, 1),
                    "sub_id": sub_id,
                    "occurrence": counts[(code.upper(), sub_id)],
                    "position": where,
                }
            )
    return out, rejected


def _drug(m: Any, seg: Any, n: int, config: ParserConfig) -> str | None:
    """The catalog key of a CE/CWE drug field (codes .1/.4, names .2/.5), None if untracked."""
    codes = [c for c in (text(m, seg, n, 1), text(m, seg, n, 4)) if c]
    names = [c for c in (text(m, seg, n, 2), text(m, seg, n, 5)) if c]
    return config.classify_drug(codes, names) if codes or names else None


def _dtm(m: Any, seg: Any, n: int, c: int, config: ParserConfig, name: str) -> datetime | None:
    """Timestamp at segment-n.c.1; raises ParseError whose ``field`` is ``name``."""
    return parse_timestamp(text(m, seg, n, c, 1), config.timezone, "x", name)


def expected_orders(
    m: Any, config: ParserConfig
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, str]], int]:
    """Every catalogued RXE of an RDE: (orders, rejected, number of RXE segments).

    An ORDER group is an ORC and the segments up to the next ORC; a group holding several RXE
    is cut before each RXE after the first. TQ1 and RXR are the first in the RXE's part.
    """
    children = list(m.children)
    names = [s.name for s in children]
    header_time = expected_header(m, config)["message_time"]
    orders = []
    rejected = []
    rxe_number = 0
    for i, rxe in enumerate(children):
        if rxe.name != "RXE":
            continue
        rxe_number += 1
        drug = _drug(m, rxe, 2, config)
        if drug is None:
            continue
        where = f"RXE[{rxe_number}]"
        orc_at = [j for j in range(i) if names[j] == "ORC"]
        if not orc_at:
            rejected.append((where, "ORC-1", "order outside an order group", drug))
            continue
        start = orc_at[-1]
        stop = next((j for j in range(i + 1, len(names)) if names[j] in ("ORC", "RXE")), None)
        stop = len(names) if stop is None else stop
        earlier_rxe = any(names[j] == "RXE" for j in range(start + 1, i))
        part = children[(i if earlier_rxe else start + 1) : stop]
        orc = children[start]
        tq1 = next((s for s in part if s.name == "TQ1"), None)
        rxr = next((s for s in part if s.name == "RXR"), None)
        try:
            dose = end = None
            if tq1 is not None:
                dose = _dtm(m, tq1, 7, 1, config, "TQ1-7")
                end = _dtm(m, tq1, 8, 1, config, "TQ1-8")
            dose = dose or _dtm(m, rxe, 1, 4, config, "RXE-1.4")
            end = end or _dtm(m, rxe, 1, 5, config, "RXE-1.5")
            dose = (
                dose
                or _dtm(m, orc, 15, 1, config, "ORC-15")
                or _dtm(m, orc, 9, 1, config, "ORC-9")
                or header_time
            )
        except ParseError as err:
            rejected.append((where, err.field, err.reason, drug))
            continue
        if dose is None:
            rejected.append((where, "TQ1-7", "no dose time", drug))
            continue
        orders.append(
            {
                "order_control": text(m, orc, 1).upper(),
                "order_status": text(m, orc, 5).upper(),
                "placer_order_id": text(m, orc, 2),
                "filler_order_id": text(m, orc, 3),
                "drug": drug,
                "drug_code": text(m, rxe, 2, 1),
                "drug_code_system": text(m, rxe, 2, 3),
                "drug_text": text(m, rxe, 2, 2),
                "route": text(m, rxr, 1).upper() if rxr is not None else "",
                "dose_at": dose,
                "end_at": end,
                "give_amount": text(m, rxe, 3),
                "give_units": text(m, rxe, 5),
                "ordering_provider": text(m, orc, 12) or text(m, rxe, 13),
                "administered": False,
                "completion_status": "",
            }
        )
    return orders, rejected, rxe_number


def expected_administrations(
    m: Any, config: ParserConfig
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str, str]], int]:
    """Every catalogued RXA of an RAS: (orders, rejected, number of RXA segments), each with
    the last ORC before it and the first RXR after it before the next ORC."""
    children = list(m.children)
    orders = []
    rejected = []
    rxa_number = 0
    orc = None
    for i, rxa in enumerate(children):
        if rxa.name == "ORC":
            orc = rxa
        if rxa.name != "RXA":
            continue
        rxa_number += 1
        drug = _drug(m, rxa, 5, config)
        if drug is None:
            continue
        where = f"RXA[{rxa_number}]"
        tz = config.timezone
        try:
            dose = parse_timestamp(text(m, rxa, 3), tz, where, "RXA-3")
            if dose is None:
                raise ParseError("missing administration time", where, "RXA-3")
            end = parse_timestamp(text(m, rxa, 4), tz, where, "RXA-4")
        except ParseError as err:
            rejected.append((where, err.field, err.reason, drug))
            continue
        rxr = None
        for later in children[i + 1 :]:
            if later.name == "ORC":
                break
            if later.name == "RXR":
                rxr = later
                break
        orders.append(
            {
                "order_control": text(m, orc, 1).upper() if orc is not None else "",
                "order_status": text(m, orc, 5).upper() if orc is not None else "",
                "placer_order_id": text(m, orc, 2) if orc is not None else "",
                "filler_order_id": text(m, orc, 3) if orc is not None else "",
                "drug": drug,
                "drug_code": text(m, rxa, 5, 1),
                "drug_code_system": text(m, rxa, 5, 3),
                "drug_text": text(m, rxa, 5, 2),
                "route": text(m, rxr, 1).upper() if rxr is not None else "",
                "dose_at": dose,
                "end_at": end,
                "give_amount": text(m, rxa, 6),
                "give_units": text(m, rxa, 7),
                "ordering_provider": text(m, orc, 12) if orc is not None else "",
                "administered": True,
                "completion_status": text(m, rxa, 20).upper(),
            }
        )
    return orders, rejected, rxa_number
