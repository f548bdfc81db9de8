"""What a parser needs to know about the hospital: code maps, identifier choice, time zone."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

# Given the codes (RXE-2.1, RXE-2.4) and names (RXE-2.2, RXE-2.5) of a give code, return the
# drug catalog key, or None when the drug is not one LabSentinel tracks.
DrugClassifier = Callable[[Sequence[str], Sequence[str]], "str | None"]


def _no_drugs(codes: Sequence[str], names: Sequence[str]) -> str | None:
    return None


@dataclass(frozen=True)
class ParserConfig:
    # OBX-3 code (upper-cased; LOINC or local) -> canonical analyte key. Codes not in the map
    # are skipped without parsing the rest of their OBX.
    lab_codes: Mapping[str, str] = field(default_factory=dict)
    classify_drug: DrugClassifier = _no_drugs
    # PID-3 / MRG-1 choice: only an accepted repetition - type (CX-5) in identifier_types
    # (empty = any type) and, when authorities are listed, assigning authority (CX-4.1) among
    # them; the earliest listed authority wins, then the first repetition. No accepted
    # repetition is a ParseError, never a fallback: one number from two authorities is two
    # patients.
    identifier_types: tuple[str, ...] = ("MR",)
    identifier_authorities: tuple[str, ...] = ()
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
