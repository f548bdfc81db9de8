"""The drug and lab catalogs: what LabSentinel tracks, how to recognise it, and in which units.

Both are built once at start from the TOML files in ``configs/`` (``tomllib.loads`` output) and
validated there: a bad file raises ``CatalogError`` whose message names the key path and what was
expected ("drugs.denosumab.effect_days: must be a positive integer"), so start-up fails loudly
instead of paging wrongly. After that they are immutable and pure: no I/O, no clock.

``DrugCatalog.classify`` runs on every pharmacy message, so it is one precompiled regex plus two
dict look-ups. ``LabCatalog.to_canonical`` turns any accepted spelling of a unit into the
analyte's canonical unit and raises ``UnknownUnit`` otherwise (CLINICAL.md: dead-letter a relevant
result whose unit cannot be understood rather than guess).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel

from alerts.catalog_files import (
    PHRASES,
    DrugEntry,
    DrugFile,
    LabFile,
)
from alerts.tables import TableError, parse
from alerts.units import normalise_unit


class CatalogError(ValueError):
    """A catalog file is invalid; the message starts with the offending key path."""


class UnknownUnit(CatalogError):
    """An analyte/unit pair the lab catalog cannot convert (units are not PHI)."""


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], data: Any) -> _M:
    """``data`` validated as ``model``; raises ``CatalogError`` naming the key path."""
    try:
        return parse(model, data, PHRASES)
    except TableError as exc:
        raise CatalogError(str(exc)) from None


def _name_key(name: str) -> str:
    """Name as matched: lower case, runs of spaces/hyphens as one space."""
    return " ".join(re.split(r"[\s\-]+", name.strip().lower()))


# --------------------------------------------------------------------------------------------
# drugs


@dataclass(frozen=True)
class Form:
    """How long one administration route of a drug protects: the effect-interval schedule."""

    schedule: str  # "single": each dose covers effect_days | "ongoing": start → end + grace_days
    effect_days: int
    grace_days: int


@dataclass(frozen=True)
class Drug:
    key: str
    name: str  # display name for pages, e.g. "ferric carboxymaltose"
    drug_class: str  # "iv_iron" | "antiresorptive" | "corrective"
    ingredient: str
    names: tuple[str, ...]  # generic and brand names, lower case
    codes: tuple[str, ...]  # RxNorm / NDC / ATC / local codes, upper case
    schedule: str  # "single": each dose covers effect_days | "ongoing": start → end + grace_days
    effect_days: int
    grace_days: int
    risk: str = ""  # e.g. "high" / "lower" for IV iron formulations
    # The route kind the schedule above belongs to ("parenteral" | "oral" | "" = not said).
    route: str = ""
    # A second, oral form for a drug given both ways (ibandronate: IV every 3 months or PO
    # monthly); then the schedule above is the parenteral form. None: one form only.
    oral: Form | None = None

    @property
    def main(self) -> Form:
        return Form(self.schedule, self.effect_days, self.grace_days)

    def forms(self, route_kind: str) -> tuple[Form, ...]:
        """The forms that apply to an order of ``route_kind`` ("oral" | "parenteral" | "").

        A drug with one form has it whatever the route. A drug with both forms takes the one
        the route names; an unknown route takes both (the union of their intervals): missing
        a protected patient is the dangerous error.
        """
        if self.oral is None:
            return (self.main,)
        if route_kind == "oral":
            return (self.oral,)
        if route_kind == "parenteral":
            return (self.main,)
        return (self.main, self.oral)


class DrugCatalog:
    """Drugs by key, plus the code and name indexes ``classify`` uses."""

    def __init__(self, drugs: Sequence[Drug]) -> None:
        self._drugs: dict[str, Drug] = {d.key: d for d in drugs}
        self._by_code: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        ingredients = {_name_key(d.ingredient) for d in drugs}
        rank: dict[str, tuple[int, int]] = {}
        for drug in drugs:
            for code in drug.codes:
                self._by_code[code.upper()] = drug.key
            for name in drug.names:
                key = _name_key(name)
                self._by_name[key] = drug.key
                # A name that is no drug's ingredient (a brand, "zoledronic acid 4 mg") is more
                # specific than an ingredient name; among equals the longer name wins.
                rank[key] = (0 if key in ingredients else 1, len(key))
        self._rank = rank
        if self._by_name:
            alternatives = sorted(self._by_name, key=lambda n: (-len(n), n))
            body = "|".join(r"[\s\-]+".join(map(re.escape, n.split(" "))) for n in alternatives)
            self._pattern: re.Pattern[str] | None = re.compile(
                rf"(?<![a-z0-9])(?:{body})(?![a-z0-9])"
            )
        else:
            self._pattern = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrugCatalog:
        """Build from ``tomllib.loads(configs/drugs.toml)``.

        Raises ``CatalogError`` whose message names the offending key path.
        """
        entries = _parse(DrugFile, data).drugs
        if entries is None:
            raise CatalogError("drugs: must be a table")
        if not entries:
            raise CatalogError("drugs: must define at least one drug")
        drugs: list[Drug] = []
        code_owner: dict[str, str] = {}
        name_owner: dict[str, str] = {}
        for key, entry in entries.items():
            path = f"drugs.{key}"
            if not re.fullmatch(r"[a-z0-9_]+", key):
                raise CatalogError(f"{path}: key must be lower-case letters, digits and '_'")
            names = tuple(dict.fromkeys(_name_key(n) for n in entry.names))
            if not names:
                raise CatalogError(f"{path}.names: must list at least one name")
            codes = tuple(dict.fromkeys(c.upper() for c in entry.codes))
            for code in codes:
                if code in code_owner:
                    raise CatalogError(
                        f"{path}.codes: {code!r} is already a code of drugs.{code_owner[code]}"
                    )
                code_owner[code] = key
            for n in names:
                if n in name_owner:
                    raise CatalogError(
                        f"{path}.names: {n!r} is already a name of drugs.{name_owner[n]}"
                    )
                name_owner[n] = key
            drugs.append(_drug(key, entry, names=names, codes=codes))
        return cls(drugs)

    def classify(self, codes: Sequence[str], names: Sequence[str]) -> str | None:
        """Return the catalog key of a give code (RXE-2), or None when the drug is not tracked.

        Codes are tried first (case-insensitive exact match). Then every catalog name is looked
        for as a whole word (case-insensitive) inside the free-text names; when several match,
        a brand or other non-ingredient name beats an ingredient name ("xgeva" beats
        "denosumab"), then the longer name wins. Never raises.
        """
        for code in codes:
            key = self._by_code.get(code.strip().upper())
            if key is not None:
                return key
        if self._pattern is None:
            return None
        best: tuple[tuple[int, int], str] | None = None
        for text in names:
            if not text:
                continue
            for match in self._pattern.finditer(text.lower()):
                name = _name_key(match.group(0))
                candidate = (self._rank[name], name)
                if best is None or candidate[0] > best[0]:
                    best = candidate
        return None if best is None else self._by_name[best[1]]

    def get(self, key: str) -> Drug | None:
        return self._drugs.get(key)

    def __getitem__(self, key: str) -> Drug:
        return self._drugs[key]

    def __contains__(self, key: object) -> bool:
        return key in self._drugs

    def keys(self, drug_class: str | None = None) -> tuple[str, ...]:
        """Drug keys in catalog order, optionally only those of one class."""
        return tuple(
            k for k, d in self._drugs.items() if drug_class is None or d.drug_class == drug_class
        )


def _drug(key: str, entry: DrugEntry, *, names: tuple[str, ...], codes: tuple[str, ...]) -> Drug:
    """The catalog entry of a validated drug table."""
    oral = None
    if entry.has_oral:
        oral = Form(
            schedule=entry.oral_schedule or "single",
            effect_days=entry.oral_effect_days or 0,
            grace_days=entry.oral_grace_days or 0,
        )
    return Drug(
        key=key,
        name=entry.name,
        drug_class=entry.drug_class,
        ingredient=(entry.ingredient or entry.name).lower(),
        names=names,
        codes=codes,
        schedule=entry.schedule,
        effect_days=entry.effect_days or 0,
        grace_days=entry.grace_days,
        risk=entry.risk,
        route=entry.route if entry.route is not None else ("parenteral" if oral else ""),
        oral=oral,
    )


# --------------------------------------------------------------------------------------------
# labs


class LabCatalog:
    """Analytes by key: their codes, canonical unit and accepted units with factors."""

    def __init__(
        self,
        code_map: Mapping[str, str],
        canonical_units: Mapping[str, str],
        factors: Mapping[str, Mapping[str, float]],
    ) -> None:
        self._code_map = MappingProxyType(dict(code_map))
        self._canonical = dict(canonical_units)
        self._factors = {a: dict(f) for a, f in factors.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabCatalog:
        """Build from ``tomllib.loads(configs/labs.toml)``; raises ``CatalogError`` naming the key.

        Layout: ``[analytes.<key>]`` with ``canonical_unit``, ``codes`` and a ``units`` table of
        ``"spelling" = factor`` (value in that unit × factor = value in the canonical unit).
        """
        entries = _parse(LabFile, data).analytes
        if entries is None:
            raise CatalogError("analytes: must be a table")
        if not entries:
            raise CatalogError("analytes: must define at least one analyte")
        code_map: dict[str, str] = {}
        canonical: dict[str, str] = {}
        factors: dict[str, dict[str, float]] = {}
        for key, entry in entries.items():
            path = f"analytes.{key}"
            accepted: dict[str, float] = {normalise_unit(entry.canonical_unit): 1.0}
            for spelling, value in entry.units.items():
                norm = normalise_unit(spelling)
                if norm in accepted and abs(accepted[norm] - value) > 1e-12:
                    raise CatalogError(
                        f"{path}.units.{spelling}: conflicts with another spelling of the same unit"
                    )
                accepted[norm] = value
            for code in entry.codes:
                upper = code.upper()
                if upper in code_map and code_map[upper] != key:
                    raise CatalogError(
                        f"{path}.codes: {code!r} is already a code of analytes.{code_map[upper]}"
                    )
                code_map[upper] = key
            canonical[key] = entry.canonical_unit
            factors[key] = accepted
        return cls(code_map, canonical, factors)

    @property
    def code_map(self) -> Mapping[str, str]:
        """Upper-case OBX-3 code → analyte key (what ``ParserConfig.lab_codes`` wants)."""
        return self._code_map

    def analytes(self) -> tuple[str, ...]:
        return tuple(self._canonical)

    def canonical_unit(self, analyte: str) -> str:
        """The analyte's canonical unit; raises ``UnknownUnit`` for an unknown analyte."""
        try:
            return self._canonical[analyte]
        except KeyError:
            raise UnknownUnit(f"analytes.{analyte}: unknown analyte") from None

    def understands(self, analyte: str, unit: str) -> bool:
        return normalise_unit(unit) in self._factors.get(analyte, {})

    def to_canonical(self, analyte: str, value: float, unit: str) -> float:
        """``value`` in ``unit`` expressed in the analyte's canonical unit.

        Raises ``UnknownUnit`` (message names analyte and unit, never the value) when the unit,
        including an empty one, is not an accepted spelling for that analyte.
        """
        return value * self._factor(analyte, unit)

    def factor(self, analyte: str, unit: str) -> float:
        """The factor taking ``unit`` to the analyte's canonical unit, as configured.

        Raises ``UnknownUnit`` as ``to_canonical`` does. Rules that must compare exactly
        (a ``<x`` at a threshold) multiply with it in exact decimal arithmetic.
        """
        return self._factor(analyte, unit)

    def _factor(self, analyte: str, unit: str) -> float:
        factors = self._factors.get(analyte)
        if factors is None:
            raise UnknownUnit(f"analytes.{analyte}: unknown analyte")
        try:
            return factors[normalise_unit(unit)]
        except KeyError:
            raise UnknownUnit(f"analytes.{analyte}: unit {unit!r} is not understood") from None
