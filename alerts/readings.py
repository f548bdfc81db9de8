"""What the interaction rule compares: counted trigger results, exactly, in canonical units.

Pure (no I/O, no clock). CLINICAL.md "Windows" and "Edge semantics", the value side:

- a result counts when its status is in ``config.counted_statuses`` (F, C, U: a preliminary
  result never pages) and it carries a finite number;
- **comparators**: ``<x`` is strictly below x, so it takes the tier whose threshold is x
  (``<1.0`` phosphate is critical); a plain x and ``<=x`` are compared as ``x < threshold``;
  ``>x`` / ``>=x`` never qualify as low;
- values, unit factors, thresholds and the albumin formula are compared in **exact decimal
  arithmetic** (``Fraction`` of the decimal the lab or the config wrote), so ``<0.65 mmol/L``
  (2.01305 mg/dL) is not below 2.0 mg/dL by float noise, and a threshold configured in mmol/L
  is met exactly by a result in mmol/L at the same number;
- total calcium is albumin-corrected with the closest counted plain albumin within
  ``albumin_pairing_hours``: Ca + 0.8 x (4.0 - albumin g/dL), in both directions, as the
  formula is written; a bounded albumin (``<1.0``) is no basis for a correction;
- **a lab-reported corrected calcium replaces** the total calcium of the same specimen (when
  non-empty) or the same collection time; only a corrected calcium that itself counts
  (counted status, a number, an understood unit; any comparator) replaces;
- a result whose unit the lab catalog does not understand is skipped (the service
  dead-letters such results before evaluation; skipping cannot page wrongly);
- a trigger analyte without a threshold in ``config.thresholds`` uses CLINICAL.md's defaults
  (``DEFAULT_THRESHOLDS``); thresholds given in another accepted unit are converted exactly.

The trend rule reads the same values through ``canonical_value`` so a "calcium" means the same
number in both rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from alerts.catalog import LabCatalog, UnknownUnit
from alerts.model import (
    ANALYTE_ALBUMIN,
    ANALYTE_CALCIUM,
    ANALYTE_CORRECTED_CALCIUM,
    ANALYTE_IONIZED_CALCIUM,
    ANALYTE_PHOSPHATE,
    RuleConfig,
    Severity,
    StoredResult,
    Thresholds,
)

# CLINICAL.md "Default thresholds (after CTCAE grading)", canonical units.
DEFAULT_THRESHOLDS: dict[str, Thresholds] = {
    ANALYTE_PHOSPHATE: Thresholds("mg/dL", warning=2.5, high=2.0, critical=1.0),
    ANALYTE_CALCIUM: Thresholds("mg/dL", warning=8.5, high=8.0, critical=7.0),
    ANALYTE_IONIZED_CALCIUM: Thresholds("mmol/L", warning=1.12, high=1.0, critical=0.9),
}

# CLINICAL.md: corrected Ca (mg/dL) = Ca + 0.8 x (4.0 - albumin g/dL)
ALBUMIN_REFERENCE_G_DL = 4.0
ALBUMIN_CALCIUM_FACTOR = 0.8

_RESULT_ANALYTES = {
    ANALYTE_PHOSPHATE: ANALYTE_PHOSPHATE,
    ANALYTE_CALCIUM: ANALYTE_CALCIUM,
    ANALYTE_IONIZED_CALCIUM: ANALYTE_IONIZED_CALCIUM,
    ANALYTE_CORRECTED_CALCIUM: ANALYTE_CALCIUM,
}

Albumins = list[tuple[datetime, str, Fraction]]


def exact(number: float) -> Fraction:
    """The decimal a float was written as (``0.65`` -> 65/100), exactly.

    ``repr`` is the shortest decimal that reads back as the same float, i.e. what the lab or
    the config file wrote, so products and comparisons of these are free of binary noise.
    """
    return Fraction(Decimal(repr(number)))


@dataclass(frozen=True)
class Limits:
    """One analyte's thresholds, exactly, in its canonical unit (worst tier first)."""

    tiers: tuple[tuple[Severity, Fraction], ...]

    def severity(self, value: Fraction, strict: bool) -> Severity | None:
        """The tier of ``value``; ``strict`` ("<x": strictly below x) meets a threshold equal
        to x, a plain value must be below it."""
        for severity, limit in self.tiers:
            if value < limit or (strict and value == limit):
                return severity
        return None


@dataclass(frozen=True)
class Reading:
    """A counted trigger result as the rule compares it."""

    result: StoredResult
    analyte: str  # trigger analyte
    value: Fraction  # canonical unit, albumin-corrected where applied
    strict: bool  # "<x": the true value is strictly below ``value``
    corrected: bool


def limits(config: RuleConfig, labs: LabCatalog) -> dict[str, Limits]:
    """Thresholds per trigger analyte, exactly, in the lab catalog's canonical unit.

    Raises ``CatalogError`` when a configured threshold unit is not understood."""
    out: dict[str, Limits] = {}
    for analyte, default in DEFAULT_THRESHOLDS.items():
        t = config.thresholds.get(analyte, default)
        factor = Fraction(1)
        if analyte in labs.analytes() and t.unit != labs.canonical_unit(analyte):
            factor = exact(labs.factor(analyte, t.unit))  # CatalogError: misconfigured unit
        out[analyte] = Limits(
            (
                (Severity.CRITICAL, exact(t.critical) * factor),
                (Severity.HIGH, exact(t.high) * factor),
                (Severity.WARNING, exact(t.warning) * factor),
            )
        )
    return out


def _counts(result: StoredResult, config: RuleConfig) -> bool:
    """Counted status and a finite number (whatever the comparator)."""
    return (
        result.value is not None
        and math.isfinite(result.value)
        and result.status.strip().upper() in config.counted_statuses
    )


def countable_value(result: StoredResult, config: RuleConfig) -> float | None:
    """The value to compare as "low", or None when it cannot count as low at all."""
    if not _counts(result, config) or result.comparator.strip().startswith(">"):
        return None  # ">x" says nothing about being low
    return result.value  # "", "=", "<x", "<=x": the value is at most x


def _to_canonical(result: StoredResult, value: float, labs: LabCatalog) -> Fraction | None:
    try:
        return exact(value) * exact(labs.factor(result.analyte, result.unit))
    except UnknownUnit:
        return None


def _albumins(results: Sequence[StoredResult], labs: LabCatalog, config: RuleConfig) -> Albumins:
    out: Albumins = []
    for r in results:
        if r.analyte != ANALYTE_ALBUMIN or r.comparator.strip():
            continue  # a bounded albumin ("<1.0") is no basis for a correction
        value = countable_value(r, config)
        canonical = None if value is None else _to_canonical(r, value, labs)
        if canonical is not None:
            out.append((r.observed_at, r.result_key, canonical))
    return out


def _closest(albumins: Albumins, at: datetime, hours: int) -> Fraction | None:
    limit = timedelta(hours=hours)
    best: tuple[timedelta, datetime, str, Fraction] | None = None
    for observed_at, key, value in albumins:
        gap = abs(observed_at - at)
        if gap <= limit:
            candidate = (gap, observed_at, key, value)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
    return None if best is None else best[3]


def _reading(
    result: StoredResult, albumins: Albumins, labs: LabCatalog, config: RuleConfig
) -> Reading | None:
    analyte = _RESULT_ANALYTES.get(result.analyte)
    value = countable_value(result, config)
    if analyte is None or value is None:
        return None
    canonical = _to_canonical(result, value, labs)
    if canonical is None:
        return None
    comparator = result.comparator.strip()
    strict = comparator.startswith("<") and not comparator.startswith("<=")
    corrected = result.analyte == ANALYTE_CORRECTED_CALCIUM
    if result.analyte == ANALYTE_CALCIUM:
        albumin = _closest(albumins, result.observed_at, config.albumin_pairing_hours)
        if albumin is not None:
            canonical += exact(ALBUMIN_CALCIUM_FACTOR) * (exact(ALBUMIN_REFERENCE_G_DL) - albumin)
            corrected = True
    return Reading(result, analyte, canonical, strict, corrected)


def replaced_totals(
    results: Sequence[StoredResult], labs: LabCatalog, config: RuleConfig
) -> set[str]:
    """Result keys of total calciums that a counted lab-reported corrected calcium of the same
    specimen (non-empty) or the same collection time replaces."""
    specimens: set[str] = set()
    times: set[datetime] = set()
    for r in results:
        counts = r.analyte == ANALYTE_CORRECTED_CALCIUM and _counts(r, config)
        if counts and labs.understands(r.analyte, r.unit):
            times.add(r.observed_at)
            if r.specimen:
                specimens.add(r.specimen)
    return {
        r.result_key
        for r in results
        if r.analyte == ANALYTE_CALCIUM
        and (r.observed_at in times or (r.specimen and r.specimen in specimens))
    }


def readings(
    results: Sequence[StoredResult], labs: LabCatalog, config: RuleConfig
) -> list[Reading]:
    """Every counted trigger result as compared: canonical, exact, corrected where it can be,
    totals replaced by a lab-reported corrected calcium left out. Never raises."""
    albumins = _albumins(results, labs, config)
    replaced = replaced_totals(results, labs, config)
    out: list[Reading] = []
    for r in results:
        if r.analyte == ANALYTE_CALCIUM and r.result_key in replaced:
            continue
        reading = _reading(r, albumins, labs, config)
        if reading is not None:
            out.append(reading)
    return out


def counted_albumins(
    results: Sequence[StoredResult], labs: LabCatalog, config: RuleConfig
) -> list[tuple[datetime, str, float]]:
    """Counted plain albumins (time, key, g/dL) for ``canonical_value`` (the trend rule)."""
    return [(at, key, float(v)) for at, key, v in _albumins(results, labs, config)]


def canonical_value(
    result: StoredResult,
    albumins: list[tuple[datetime, str, float]],
    labs: LabCatalog,
    config: RuleConfig,
) -> tuple[float, bool] | None:
    """The result in its analyte's canonical unit, and whether it is albumin-corrected.

    The float view of what the interaction rule compares, for the trend rule: the same
    correction with the closest albumin within the pairing window, so a "calcium" means the
    same number in each. None when the result cannot count (status, no number, ``>x``) or
    its unit is not understood (dead-lettered upstream; never guess a scale).
    """
    exact_albumins = [(at, key, exact(v)) for at, key, v in albumins]
    reading = _reading(result, exact_albumins, labs, config)
    return None if reading is None else (float(reading.value), reading.corrected)
