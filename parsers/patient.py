"""PID-3 identifier choice and PV1 location -> Patient. Nothing else is read from PID."""

from __future__ import annotations

from functools import lru_cache

from parsers.config import ParserConfig
from parsers.encoding import Delimiters, component, field, repetitions
from parsers.errors import ParseError
from parsers.events import Patient


@lru_cache(maxsize=16)
def _upper_set(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.upper() for v in values)


def choose_identifier(pid3: str, d: Delimiters, config: ParserConfig) -> tuple[str, str, str]:
    """Pick ``(id, authority, type)`` from the raw PID-3 repetitions.

    Rule (see ParserConfig): among repetitions with a non-empty CX-1 whose CX-5 is one of
    ``identifier_types``, take the first whose CX-4.1 is the earliest listed authority; if
    none has a listed authority (or none are listed), the first such repetition. If no
    repetition has a listed type, the first repetition with a non-empty id. Types and
    authorities compare case-insensitively.

    Raises ParseError("no usable patient identifier", "PID", "PID-3").
    """
    types = _upper_set(tuple(config.identifier_types))
    authorities = config.identifier_authorities
    # Without subcomponent or escape characters (the usual PID-3) a repetition's components
    # are the pieces between component separators; component() handles everything else.
    plain = not (d.subcomponent in pid3 or d.escape in pid3)
    cs = d.component
    first_any: tuple[str, str, str] | None = None
    typed: list[tuple[str, str, str]] = []
    for rep in repetitions(pid3, d):
        if plain:
            parts = rep.split(cs, 5)
            ident = parts[0].strip()
            if not ident:
                continue
            n = len(parts)
            cand = (ident, parts[3].strip() if n > 3 else "", parts[4].strip() if n > 4 else "")
        else:
            ident = component(rep, d, 1).strip()
            if not ident:
                continue
            cand = (ident, component(rep, d, 4, 1).strip(), component(rep, d, 5).strip())
        if first_any is None:
            first_any = cand
        if cand[2].upper() in types:
            if not authorities:
                return cand  # the first typed repetition wins
            typed.append(cand)
    if typed:
        for authority in authorities:
            wanted = authority.upper()
            for cand in typed:
                if cand[1].upper() == wanted:
                    return cand
        return typed[0]
    if first_any is None:
        raise ParseError("no usable patient identifier", "PID", "PID-3")
    return first_any


def parse_patient(
    pid: list[str] | None, pv1: list[str] | None, d: Delimiters, config: ParserConfig
) -> Patient:
    """Build the Patient from split PID and (optional) PV1 segments.

    Location is PV1-3 rendered "point of care/room/bed" without empty parts; facility is
    PV1-3.4.1; service is PV1-10.1. Raises ParseError naming PID-3 when PID is missing or has
    no usable identifier.
    """
    if pid is None:
        raise ParseError("missing PID segment", "PID", "PID-3")
    ident, authority, id_type = choose_identifier(field(pid, 3), d, config)
    location = facility = service = ""
    if pv1 is not None:
        pv13 = field(pv1, 3)
        if d.repetition in pv13 or d.subcomponent in pv13 or d.escape in pv13:
            parts = [component(pv13, d, i, 1) for i in (1, 2, 3, 4)]
        else:  # plain text: components are the pieces between component separators
            parts = pv13.split(d.component, 4)
            parts += ("", "", "")
        location = "/".join(filter(None, (parts[0].strip(), parts[1].strip(), parts[2].strip())))
        facility = parts[3].strip()
        service = component(field(pv1, 10), d, 1).strip()
    # Positional (id, authority, id_type, location, facility, service): keywords cost more
    # than the rest of this function on a frozen dataclass.
    return Patient(ident, authority, id_type, location, facility, service)
