"""The interaction rule ``iron-antiresorptive-mineral`` (CLINICAL.md), as a pure function.

``evaluate_patient`` looks at a patient's whole stored history and returns the findings that
hold now. It is re-run whenever a lab result or a pharmacy message arrives, in whatever order
they arrive, so it depends only on event times (observation, dose) and on ``now`` (for the
backfill flag and open-ended orders), never on arrival order.

A result qualifies when all of these hold:

1. status in ``config.counted_statuses`` (F, C, U: a preliminary result never pages), numeric;
   analyte phosphate, calcium, ionized calcium, or a lab-reported albumin-corrected calcium
   (counted as "calcium" with ``corrected_for_albumin``);
2. it lies in an IV iron risk window: some dose ``d`` with ``d <= observed_at <= d + window``
   (the latest such dose is the finding's iron);
3. an antiresorptive effect interval ``[a0, a1]`` overlaps ``[d, observed_at]``
   (``a0 <= observed_at and a1 >= d``), so an antiresorptive given a few days after the iron
   counts, one given after the result does not;
4. its value in the canonical unit is below the analyte's warning threshold. Total calcium is
   albumin-corrected with the closest counted albumin within ``albumin_pairing_hours``:
   Ca + 0.8 x (4.0 - albumin g/dL). ``<x`` / ``<=x`` count as x (the value is at most x);
   ``>x`` / ``>=x`` never qualify as low.

Choices where CLINICAL.md is silent (the clinically safe side):

- A result whose unit the lab catalog does not understand is skipped here. The service
  dead-letters such results before evaluation, so this only guards against a stored row from
  before a catalog change; skipping cannot page wrongly, and the dead letter is the alarm.
- A trigger analyte without a threshold in ``config.thresholds`` uses CLINICAL.md's defaults
  (``DEFAULT_THRESHOLDS``) rather than never alerting. Thresholds given in another accepted
  unit are converted to the canonical unit.
- The albumin correction is applied in both directions, as the formula is written.
- Double trouble: a qualifying phosphate and a qualifying calcium (total or ionized) of the
  same iron episode within ``double_trouble_hours`` of each other raise each such finding one
  tier (WARNING -> HIGH -> CRITICAL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass(frozen=True)
class _Qualifying:
    result: StoredResult
    analyte: str  # trigger analyte
    value: float  # canonical unit, corrected where applied
    corrected: bool
    severity: Severity
    iron: Exposure
    episode_start: datetime
    antiresorptive: Exposure


def _severity(value: float, t: Thresholds) -> Severity | None:
    if value < t.critical:
        return Severity.CRITICAL
    if value < t.high:
        return Severity.HIGH
    if value < t.warning:
        return Severity.WARNING
    return None


def _thresholds(config: RuleConfig, labs: LabCatalog) -> dict[str, Thresholds]:
    out: dict[str, Thresholds] = {}
    for analyte, default in DEFAULT_THRESHOLDS.items():
        t = config.thresholds.get(analyte, default)
        if analyte in labs.analytes() and t.unit != labs.canonical_unit(analyte):
            f = labs.to_canonical(analyte, 1.0, t.unit)  # CatalogError: misconfigured unit
            t = Thresholds(labs.canonical_unit(analyte), t.warning * f, t.high * f, t.critical * f)
        out[analyte] = t
    return out


def iron_episodes(irons: list[Exposure]) -> dict[int, datetime]:
    """Index into ``irons`` (sorted by start) -> its episode's first dose time.

    A dose that starts inside an earlier dose's risk window continues (and extends) that
    episode; otherwise it starts a new one.
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


def countable_value(result: StoredResult, config: RuleConfig) -> float | None:
    """The value to compare as "low", or None when it cannot count as low at all."""
    if result.value is None or result.status.strip().upper() not in config.counted_statuses:
        return None
    comparator = result.comparator.strip()
    if comparator.startswith(">"):
        return None  # ">x" says nothing about being low
    return result.value  # "", "=", "<x", "<=x": the value is at most x


def counted_albumins(
    results: Sequence[StoredResult], labs: LabCatalog, config: RuleConfig
) -> list[tuple[datetime, str, float]]:
    out: list[tuple[datetime, str, float]] = []
    for r in results:
        if r.analyte != ANALYTE_ALBUMIN or r.comparator.strip():
            continue  # a bounded albumin ("<1.0") is no basis for a correction
        value = countable_value(r, config)
        if value is None:
            continue
        try:
            out.append((r.observed_at, r.result_key, labs.to_canonical(r.analyte, value, r.unit)))
        except UnknownUnit:
            continue
    return out


def closest_albumin(
    albumins: list[tuple[datetime, str, float]], at: datetime, hours: int
) -> float | None:
    limit = timedelta(hours=hours)
    best: tuple[timedelta, datetime, str, float] | None = None
    for observed_at, key, value in albumins:
        gap = abs(observed_at - at)
        if gap <= limit:
            candidate = (gap, observed_at, key, value)
            if best is None or candidate[:3] < best[:3]:
                best = candidate
    return None if best is None else best[3]


def canonical_value(
    result: StoredResult,
    albumins: list[tuple[datetime, str, float]],
    labs: LabCatalog,
    config: RuleConfig,
) -> tuple[float, bool] | None:
    """The result in its analyte's canonical unit, and whether it is albumin-corrected.

    Total calcium is corrected with the closest albumin within the pairing window (CLINICAL.md
    formula); a lab-reported corrected calcium is corrected already. None when the result
    cannot count (status, no number) or its unit is not understood (dead-lettered upstream;
    never guess a scale). Both the interaction rule and the trend rule read values this way,
    so a "calcium" means the same number in each.
    """
    value = countable_value(result, config)
    if value is None:
        return None
    try:
        value = labs.to_canonical(result.analyte, value, result.unit)
    except UnknownUnit:
        return None
    corrected = result.analyte == ANALYTE_CORRECTED_CALCIUM
    if result.analyte == ANALYTE_CALCIUM:
        albumin = closest_albumin(albumins, result.observed_at, config.albumin_pairing_hours)
        if albumin is not None:
            value += ALBUMIN_CALCIUM_FACTOR * (ALBUMIN_REFERENCE_G_DL - albumin)
            corrected = True
    return value, corrected


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
    thresholds = _thresholds(config, labs)
    albumins = counted_albumins(history.results, labs, config)

    qualifying: list[_Qualifying] = []
    for result in history.results:
        analyte = _RESULT_ANALYTES.get(result.analyte)
        if analyte is None:
            continue
        canonical = canonical_value(result, albumins, labs, config)
        if canonical is None:
            continue
        value, corrected = canonical
        severity = _severity(value, thresholds[analyte])
        if severity is None:
            continue
        at = result.observed_at
        doses = [i for i, d in enumerate(irons) if d.start <= at <= d.end]
        if not doses:
            continue
        index = max(doses, key=lambda i: (irons[i].start, i))
        iron = irons[index]
        overlapping = [a for a in antiresorptives if a.start <= at and a.end >= iron.start]
        if not overlapping:
            continue
        antiresorptive = max(overlapping, key=lambda a: (a.start, a.end, a.drug, a.order_key))
        qualifying.append(
            _Qualifying(
                result,
                analyte,
                value,
                corrected,
                severity,
                iron,
                episode_of[index],
                antiresorptive,
            )
        )

    groups: dict[tuple[str, datetime], list[_Qualifying]] = {}
    for q in qualifying:
        groups.setdefault((q.analyte, q.episode_start), []).append(q)

    double_window = timedelta(hours=config.double_trouble_hours)
    backfill = timedelta(days=config.backfill_days)
    findings: list[Finding] = []
    for (analyte, episode_start), members in groups.items():
        worst = min(members, key=lambda q: (q.value, q.result.observed_at, q.result.result_key))
        severity = max(q.severity for q in members)
        partners = _CALCIUM_ANALYTES if analyte == ANALYTE_PHOSPHATE else (ANALYTE_PHOSPHATE,)
        double = any(
            other.analyte in partners
            and other.episode_start == episode_start
            and abs(other.result.observed_at - mine.result.observed_at) <= double_window
            for mine in members
            for other in qualifying
        )
        if double:
            severity = Severity(min(severity + 1, Severity.CRITICAL))
        days = (worst.result.observed_at - worst.iron.start) // timedelta(days=1)
        findings.append(
            Finding(
                rule=RULE_INTERACTION,
                dedup_key=dedup_key(RULE_INTERACTION, history.patient_id, analyte, episode_start),
                patient_id=history.patient_id,
                analyte=analyte,
                severity=severity,
                result=worst.result,
                value_canonical=worst.value,
                corrected_for_albumin=worst.corrected,
                iron=worst.iron,
                episode_start=episode_start,
                days_since_iron=days,
                antiresorptive=worst.antiresorptive,
                backfilled=now - worst.result.observed_at > backfill,
                double_trouble=double,
            )
        )
    findings.sort(key=lambda f: f.dedup_key)
    return findings
