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

from parsers import ParserConfig  # noqa: E402
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


def expected_patient(m: Any, config: ParserConfig) -> dict[str, Any]:
    pid = segments(m, "PID")[0]
    cands = []
    for i in range(len(reps(pid, 3))):
        ident = text(m, pid, 3, 1, 1, i)
        if ident:
            cands.append((ident, text(m, pid, 3, 4, 1, i), text(m, pid, 3, 5, 1, i)))
    types = {t.upper() for t in config.identifier_types}
    typed = [c for c in cands if c[2].upper() in types]
    chosen = None
    for auth in config.identifier_authorities:
        chosen = chosen or next((c for c in typed if c[1].upper() == auth.upper()), None)
    chosen = chosen or (typed[0] if typed else cands[0])
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


def expected_results(m: Any, config: ParserConfig) -> list[dict[str, Any]]:
    """One dict per catalogued OBX, with order ids and times resolved like the spec says."""
    header_time = expected_header(m, config)["message_time"]
    out = []
    orc_ids = ("", "")
    placer = filler = ""
    obr_time = None
    for seg in m.children:
        if seg.name == "ORC":
            orc_ids = (text(m, seg, 2), text(m, seg, 3))
        elif seg.name == "OBR":
            placer = text(m, seg, 2) or orc_ids[0]
            filler = text(m, seg, 3) or orc_ids[1]
            orc_ids = ("", "")
            obr_time = _ts(m, seg, 7, config)
        elif seg.name == "OBX":
            pos = 1
            analyte = config.lab_codes.get(text(m, seg, 3, 1).upper())
            if analyte is None:
                pos = 4
                analyte = config.lab_codes.get(text(m, seg, 3, 4).upper())
            if analyte is None:
                continue
            out.append(
                {
                    "analyte": analyte,
                    "code": text(m, seg, 3, pos),
                    "code_system": text(m, seg, 3, pos + 2),
                    "value_type": text(m, seg, 2).upper(),
                    "obx5": [
                        [unescape(raw(seg, 5, c, 1, r), delimiters(m)) for c in (1, 2, 3, 4)]
                        for r in range(len(reps(seg, 5)))
                    ],
                    "unit": text(m, seg, 6, 1),
                    "status": text(m, seg, 11).upper(),
                    "observed_at": _ts(m, seg, 14, config) or obr_time or header_time,
                    "placer_order_id": placer,
                    "filler_order_id": filler,
                    "set_id": text(m, seg, 1),
                }
            )
    return out


def expected_order(m: Any, config: ParserConfig) -> dict[str, Any]:
    """RDE fields of the first order group (TQ1/RXR looked up between the first two ORCs)."""
    names = [s.name for s in m.children]
    start = names.index("ORC")
    stop = names.index("ORC", start + 1) if "ORC" in names[start + 1 :] else len(names)
    group = m.children[start + 1 : stop]
    orc = m.children[start]
    rxe = segments(m, "RXE")[0]
    tq1 = next((s for s in group if s.name == "TQ1"), None)
    rxr = next((s for s in group if s.name == "RXR"), None)
    dose = (
        (_ts(m, tq1, 7, config) if tq1 is not None else None)
        or _ts(m, rxe, 1, config, 4, 1)
        or _ts(m, orc, 15, config)
        or _ts(m, orc, 9, config)
        or expected_header(m, config)["message_time"]
    )
    end = (_ts(m, tq1, 8, config) if tq1 is not None else None) or _ts(m, rxe, 1, config, 5, 1)
    return {
        "order_control": text(m, orc, 1).upper(),
        "order_status": text(m, orc, 5).upper(),
        "placer_order_id": text(m, orc, 2),
        "filler_order_id": text(m, orc, 3),
        "drug_code": text(m, rxe, 2, 1),
        "drug_code_system": text(m, rxe, 2, 3),
        "drug_text": text(m, rxe, 2, 2),
        "drug_alt_code": text(m, rxe, 2, 4),
        "drug_alt_text": text(m, rxe, 2, 5),
        "route": text(m, rxr, 1).upper() if rxr is not None else "",
        "dose_at": dose,
        "end_at": end,
        "give_amount": text(m, rxe, 3),
        "give_units": text(m, rxe, 5),
        "ordering_provider": text(m, orc, 12) or text(m, rxe, 13),
    }
