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
3. its value, read by ``alerts.readings`` (canonical unit, exact decimal arithmetic,
   albumin-corrected, comparators honoured, a total calcium replaced by a lab-reported
   corrected calcium of the same specimen left out), is below a threshold of its analyte.

**Backfill is per result.** A qualifying result already older than ``backfill_days`` at
``now`` is stale. The service stores one alert per dedup key (analyte, episode), so there is
still one finding per key: when the group has any fresh qualifying result, the finding is
built from the fresh results only (severity, worst result, double trouble) and pages
(``backfilled=False``); a stale, worse result of the same group neither hides it nor raises
it. Only a group whose qualifying results are all stale gives a ``backfilled`` finding (the
worklist), built from all of them.

Choices where CLINICAL.md is silent (the clinically safe side):

- The value-side choices (unknown units skipped, default thresholds, the albumin correction
  in both directions) are ``alerts.readings``'s.
- Double trouble ("both minerals low within 72 h: one tier higher") is per result: a
  qualifying phosphate with a qualifying calcium (total or ionized) within
  ``double_trouble_hours``, or the other way round, is one tier higher (WARNING -> HIGH ->
  CRITICAL). The partner must itself qualify (this is the interaction's tier), in any episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.catalog import DrugCatalog, LabCatalog
from alerts.dedup import dedup_key
from alerts.exposures import derive_exposures
from alerts.model import (
    ANALYTE_CALCIUM,
    ANALYTE_IONIZED_CALCIUM,
    ANALYTE_PHOSPHATE,
    RULE_INTERACTION,
    Exposure,
    Finding,
    PatientHistory,
    RuleConfig,
    Severity,
)
from alerts.readings import Reading, limits, readings

_CALCIUM_ANALYTES = (ANALYTE_CALCIUM, ANALYTE_IONIZED_CALCIUM)


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
    thresholds = limits(config, labs)

    qualifying: list[_Qualifying] = []
    for reading in readings(history.results, labs, config):
        base = thresholds[reading.analyte].severity(reading.value, reading.strict)
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
