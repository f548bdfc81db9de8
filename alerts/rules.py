"""The interaction rule ``iron-antiresorptive-mineral`` (CLINICAL.md), as a pure function.

``evaluate_patient`` looks at a patient's whole stored history and returns the findings that
hold now. It is re-run whenever a lab result or a pharmacy message arrives, in whatever order
they arrive, so it depends only on event times (observation, dose) and on ``now`` (for the
backfill flag and open-ended orders), never on arrival order.

A result qualifies when all of these hold (CLINICAL.md "Windows" and "Edge semantics"):

1. status in ``config.counted_statuses`` (F, C, U: a preliminary result never pages), numeric;
   analyte phosphate, calcium, ionized calcium, or a lab-reported albumin-corrected calcium
   (counted as "calcium" with ``corrected_for_albumin``);
2. **every dose counts**: some IV iron dose ``d`` whose risk window holds the result
   (``d <= observed_at <= d + window``) has an antiresorptive effect interval ``[a0, a1]``
   overlapping ``[d, observed_at]`` (``a0 <= observed_at and a1 >= d``), so an antiresorptive
   given a few days after the iron counts, one given after the result does not, and a later
   dose never removes what an earlier one makes. The finding's iron is the latest such
   *qualifying* dose (``days_since_iron`` counts from it); all doses whose windows hold one
   instant belong to one episode, so the dedup key does not depend on which one is named;
3. its value in the canonical unit is below a threshold. Total calcium is albumin-corrected
   with the closest counted albumin within ``albumin_pairing_hours``:
   Ca + 0.8 x (4.0 - albumin g/dL). **Comparators**: ``<x`` is strictly below x, so it takes
   the tier whose threshold is x (``<1.0`` phosphate is critical); a plain x and ``<=x`` are
   compared as ``x < threshold``; ``>x`` / ``>=x`` never qualify as low. Values, unit factors,
   thresholds and the albumin formula are compared in exact decimal arithmetic (``Fraction``
   of the decimal the lab or the config wrote), so ``<0.65 mmol/L`` (2.01305 mg/dL) is not
   below 2.0 mg/dL by float noise, and a threshold configured in mmol/L is met exactly by a
   result in mmol/L at the same number;
4. **a lab-reported corrected calcium replaces** the total calcium of the same specimen
   (``StoredResult.specimen``, when non-empty) or the same collection time: that total is not
   a second calcium result (no finding, no double-trouble partner). Only a corrected calcium
   that itself counts (counted status, a number, an understood unit; any comparator) replaces:
   a retracted or preliminary one leaves the total to be albumin-corrected as usual.

**Backfill is per result.** A qualifying result already older than ``backfill_days`` at
``now`` is stale. The service stores one alert per dedup key (analyte, episode), so there is
still one finding per key: when the group has any fresh qualifying result, the finding is
built from the fresh results only (severity, worst result, double trouble) and pages
(``backfilled=False``); a stale, worse result of the same group neither hides it nor raises
it. Only a group whose qualifying results are all stale gives a ``backfilled`` finding (the
worklist), built from all of them.

Choices where CLINICAL.md is silent (the clinically safe side):

- A result whose unit the lab catalog does not understand is skipped here. The service
  dead-letters such results before evaluation, so this only guards against a stored row from
  before a catalog change; skipping cannot page wrongly, and the dead letter is the alarm.
- A trigger analyte without a threshold in ``config.thresholds`` uses CLINICAL.md's defaults
  (``DEFAULT_THRESHOLDS``) rather than never alerting. Thresholds given in another accepted
  unit are converted to the canonical unit (exactly).
- The albumin correction is applied in both directions, as the formula is written; a bounded
  albumin (``<1.0``) is no basis for a correction.
- Double trouble ("both minerals low within 72 h: one tier higher") is per result: a
  qualifying phosphate with a qualifying calcium (total or ionized) within
  ``double_trouble_hours``, or the other way round, is one tier higher (WARNING -> HIGH ->
  CRITICAL). The partner must itself qualify (this is the interaction's tier), in any episode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from alerts.catalog import DrugCatalog, LabCatalog, UnknownUnit
from alerts.dedup import dedup_key
from alerts.exposures import derive_exposures
from alerts.model import (
    ANALYTE_ALBUMIN,
    ANALYTE_CALCIUM,
    ANALYTE_CORRECTED_CALCIUM,
    ANALYTE_IONIZED_CALCIUM,
    ANALYTE_PHOSPHATE,
    RULE_INTERACTION,
    Exposure,
    Finding,
    PatientHistory,
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
_CALCIUM_ANALYTES = (ANALYTE_CALCIUM, ANALYTE_IONIZED_CALCIUM)

Albumins = list[tuple[datetime, str, Fraction]]


def exact(number: float) -> Fraction:
    """The decimal a float was written as (``0.65`` -> 65/100), exactly.

    ``repr`` is the shortest decimal that reads back as the same float, i.e. what the lab or
    the config file wrote, so products and comparisons of these are free of binary noise.
    """
    return Fraction(Decimal(repr(number)))


@dataclass(frozen=True)
class _Limits:
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


@dataclass(frozen=True)
class _Qualifying:
    reading: Reading
    base: Severity  # from the value alone
    iron: Exposure  # the latest qualifying dose
    episode_start: datetime
    antiresorptive: Exposure

    @property
    def at(self) -> datetime:
        return self.reading.result.observed_at


def _limits(config: RuleConfig, labs: LabCatalog) -> dict[str, _Limits]:
    """Thresholds per trigger analyte, exactly, in the lab catalog's canonical unit.

    Raises ``CatalogError`` when a configured threshold unit is not understood."""
    out: dict[str, _Limits] = {}
    for analyte, default in DEFAULT_THRESHOLDS.items():
        t = config.thresholds.get(analyte, default)
        factor = Fraction(1)
        if analyte in labs.analytes() and t.unit != labs.canonical_unit(analyte):
            factor = exact(labs.factor(analyte, t.unit))  # CatalogError: misconfigured unit
        out[analyte] = _Limits(
            (
                (Severity.CRITICAL, exact(t.critical) * factor),
                (Severity.HIGH, exact(t.high) * factor),
                (Severity.WARNING, exact(t.warning) * factor),
            )
        )
    return out


def iron_episodes(irons: list[Exposure]) -> dict[int, datetime]:
    """Index into ``irons`` (sorted by start) -> its episode's first dose time.

    A dose that starts inside an earlier dose's risk window (closed interval) continues (and
    extends) that episode; otherwise it starts a new one.
    """
    episode_of: dict[int, datetime] = {}
    episode_start: datetime | None = None
    episode_end: datetime | None = None
    for i, dose in enumerate(irons):
        if episode_end is None or episode_start is None or dose.start > episode_end:
            episode_start, episode_end = dose.start, dose.end
        else:
            episode_end = max(episode_end, dose.end)
        episode_of[i] = episode_start
    return episode_of


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


def _replaced_totals(
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
    replaced = _replaced_totals(results, labs, config)
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


def _qualify(
    reading: Reading,
    base: Severity,
    irons: Sequence[Exposure],
    episode_of: dict[int, datetime],
    antiresorptives: Sequence[Exposure],
) -> _Qualifying | None:
    at = reading.result.observed_at
    best: tuple[int, Exposure] | None = None
    for i, dose in enumerate(irons):  # sorted by start: the last qualifying dose is the latest
        if not dose.start <= at <= dose.end:
            continue
        overlapping = [a for a in antiresorptives if a.start <= at and a.end >= dose.start]
        if overlapping:
            best = (i, max(overlapping, key=lambda a: (a.start, a.end, a.drug, a.order_key)))
    if best is None:
        return None
    index, antiresorptive = best
    return _Qualifying(reading, base, irons[index], episode_of[index], antiresorptive)


def evaluate_patient(
    history: PatientHistory,
    drugs: DrugCatalog,
    labs: LabCatalog,
    config: RuleConfig,
    now: datetime,
) -> list[Finding]:
    """All current findings of the interaction rule for one patient, sorted by dedup key.

    Pure: no I/O, no clock. Raises nothing for bad data (unknown units, unknown drugs are
    skipped); a ``CatalogError`` can only come from a threshold unit the lab catalog rejects.
    """
    exposures = derive_exposures(history.orders, drugs, config, now)
    irons = [e for e in exposures if e.drug_class == "iv_iron"]
    irons.sort(key=lambda e: (e.start, e.end, e.drug, e.order_key))
    episode_of = iron_episodes(irons)
    antiresorptives = [e for e in exposures if e.drug_class == "antiresorptive"]
    if not irons or not antiresorptives:
        return []
    limits = _limits(config, labs)

    qualifying: list[_Qualifying] = []
    for reading in readings(history.results, labs, config):
        base = limits[reading.analyte].severity(reading.value, reading.strict)
        if base is None:
            continue
        q = _qualify(reading, base, irons, episode_of, antiresorptives)
        if q is not None:
            qualifying.append(q)

    double_window = timedelta(hours=config.double_trouble_hours)

    def doubled(q: _Qualifying) -> bool:
        partners = (
            _CALCIUM_ANALYTES if q.reading.analyte == ANALYTE_PHOSPHATE else (ANALYTE_PHOSPHATE,)
        )
        return any(
            other.reading.analyte in partners and abs(other.at - q.at) <= double_window
            for other in qualifying
        )

    def severity(q: _Qualifying, double: bool) -> Severity:
        return Severity(min(q.base + 1, Severity.CRITICAL)) if double else q.base

    groups: dict[tuple[str, datetime], list[_Qualifying]] = {}
    for q in qualifying:
        groups.setdefault((q.reading.analyte, q.episode_start), []).append(q)

    stale_after = timedelta(days=config.backfill_days)
    findings: list[Finding] = []
    for (analyte, episode_start), members in groups.items():
        fresh = [q for q in members if now - q.at <= stale_after]
        chosen = fresh or members  # per-result backfill: a fresh result pages on its own
        rated = [(severity(q, d), d, q) for q in chosen for d in (doubled(q),)]
        top, _, worst = min(
            rated,
            key=lambda t: (
                -t[0],
                t[2].reading.value,
                not t[2].reading.strict,
                t[2].at,
                t[2].reading.result.result_key,
            ),
        )
        findings.append(
            Finding(
                rule=RULE_INTERACTION,
                dedup_key=dedup_key(RULE_INTERACTION, history.patient_id, analyte, episode_start),
                patient_id=history.patient_id,
                analyte=analyte,
                severity=top,
                result=worst.reading.result,
                value_canonical=float(worst.reading.value),
                corrected_for_albumin=worst.reading.corrected,
                iron=worst.iron,
                episode_start=episode_start,
                days_since_iron=(worst.at - worst.iron.start) // timedelta(days=1),
                antiresorptive=worst.antiresorptive,
                backfilled=not fresh,
                double_trouble=any(d for _, d, _ in rated),
            )
        )
    findings.sort(key=lambda f: f.dedup_key)
    return findings
