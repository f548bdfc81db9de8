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


@lru_cache(maxsize=16)
def _upper_tuple(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.upper() for v in values)


def choose_identifier(pid3: str, d: Delimiters, config: ParserConfig) -> tuple[str, str, str]:
    """Pick ``(id, authority, type)`` from the raw PID-3 (or MRG-1) repetitions.

    Only an *accepted* repetition is ever chosen: a non-empty CX-1 whose CX-5 is one of
    ``identifier_types`` (any type when that list is empty) and, when
    ``identifier_authorities`` is non-empty, whose CX-4.1 is one of them. Among accepted
    repetitions the earliest listed authority wins, then the first repetition. Types and
    authorities compare case-insensitively. There is no fallback to another repetition: the
    same number from another authority is another patient.

    Raises ParseError("no accepted patient identifier", "PID", "PID-3").
    """
    types = _upper_set(tuple(config.identifier_types))
    authorities = config.identifier_authorities
    wanted = _upper_tuple(tuple(authorities))
    # Without subcomponent or escape characters (the usual PID-3) a repetition's components
    # are the pieces between component separators; component() handles everything else.
    plain = not (d.subcomponent in pid3 or d.escape in pid3)
    cs = d.component
    best: tuple[str, str, str] | None = None
    best_rank = len(wanted)
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
        if types and cand[2].upper() not in types:
            continue
        if not wanted:
            return cand  # any authority: the first accepted repetition wins
        authority = cand[1].upper()
        if authority in wanted:
            rank = wanted.index(authority)
            if rank < best_rank:
                best, best_rank = cand, rank
    if best is None:
        raise ParseError("no accepted patient identifier", "PID", "PID-3")
    return best


def parse_patient(
    pid: list[str] | None, pv1: list[str] | None, d: Delimiters, config: ParserConfig
) -> Patient:
    """Build the Patient from split PID and (optional) PV1 segments.

    Location is PV1-3 rendered "point of care/room/bed" without empty parts; facility is
    PV1-3.4.1; service is PV1-10.1. Raises ParseError naming PID-3 when PID is missing or has
    no accepted identifier (see choose_identifier).
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
