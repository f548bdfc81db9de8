"""Trend rule ``iron-antiresorptive-trend``, as a pure function.

A phosphate or calcium that has fallen by at least ``drop_fraction`` (default 30 %) from the
patient's pre-iron baseline, inside the iron risk window of an at-risk episode, is a
``warning`` even when it is still above the absolute thresholds of the interaction rule: the
fall is the early sign, the absolute threshold the late one.

Definitions (same qualification as ``alerts.rules`` wherever the two overlap):

- analytes: phosphate; calcium (total, albumin-corrected as the interaction rule does it, or a
  lab-reported corrected calcium); ionized calcium (compared only with ionized calcium);
- baseline: the latest counted result of the analyte with a plain value (no ``<``/``>``
  comparator: a bound is no reference) in ``[episode_start - baseline_days_before,
  episode_start]``, where ``episode_start`` is the episode's first dose. No baseline, no trend;
- candidate: a counted numeric result observed after the baseline, inside some dose's risk
  window ``[dose, dose + iron_window_days]`` of that episode, with an antiresorptive effect
  interval overlapping ``[dose, observed_at]`` (rules.py's condition 2 and 3). ``<x`` counts as
  x (at most x), ``>x`` never as a drop;
- drop = ``(baseline - value) / baseline`` in the analyte's canonical unit; it qualifies when
  ``drop >= drop_fraction - 1e-9`` (float noise from unit conversion must not hide a 30 % fall).

One ``TrendFinding`` per (analyte, episode): the largest drop (lowest value) wins. Its
``finding`` is an ``alerts.model.Finding`` with rule ``RULE_TREND`` and dedup key
``dedup_key(RULE_TREND, patient_id, analyte, episode_start)``, so ``plan_notifications``
handles it like any alert (alert / update / resolved); ``plan_trend_notifications`` does that
and keeps quiet where the interaction rule already has a finding for the same analyte and
episode. ``double_trouble`` is always False here: the both-minerals tier raise belongs to the
interaction rule.

Pure: no I/O, no clock; ``now`` is a parameter (backfill flag, open-ended orders).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.catalog import DrugCatalog, LabCatalog
from alerts.dedup import dedup_key
from alerts.model import (
    ANALYTE_CALCIUM,
    ANALYTE_CORRECTED_CALCIUM,
    ANALYTE_IONIZED_CALCIUM,
    ANALYTE_PHOSPHATE,
    AlertState,
    Finding,
    NotificationPlan,
    PatientHistory,
    RuleConfig,
    Severity,
    StoredResult,
)
from alerts.monitoring import AtRiskEpisode, MonitoringConfig, at_risk_episodes
from alerts.planning import plan_notifications

# The interaction rule's value and albumin handling, so a "calcium" means the same number in
# both rules.
from alerts.readings import canonical_value, counted_albumins, replaced_totals

RULE_TREND = "iron-antiresorptive-trend"
# A fall of 30 % from baseline is clinically meaningful before any threshold is crossed.
DEFAULT_DROP_FRACTION = 0.30
_EPSILON = 1e-9

# result analyte -> trend analyte
_TREND_ANALYTES = {
    ANALYTE_PHOSPHATE: ANALYTE_PHOSPHATE,
    ANALYTE_CALCIUM: ANALYTE_CALCIUM,
    ANALYTE_CORRECTED_CALCIUM: ANALYTE_CALCIUM,
    ANALYTE_IONIZED_CALCIUM: ANALYTE_IONIZED_CALCIUM,
}


@dataclass(frozen=True)
class TrendFinding:
    """A fall from baseline: the alert (a ``Finding``) plus the baseline it was measured from."""

    finding: Finding  # rule RULE_TREND, severity WARNING; feed it to plan_notifications
    baseline: StoredResult
    baseline_canonical: float  # canonical unit, albumin-corrected where the value is
    drop: float  # (baseline - value) / baseline, e.g. 0.34

    @property
    def dedup_key(self) -> str:
        return self.finding.dedup_key

    @property
    def analyte(self) -> str:
        return self.finding.analyte

    @property
    def episode_start(self) -> datetime:
        return self.finding.episode_start


@dataclass(frozen=True)
class _Value:
    result: StoredResult
    analyte: str  # trend analyte
    value: float  # canonical, corrected where applied
    corrected: bool


def _values(results: Sequence[StoredResult], labs: LabCatalog, config: RuleConfig) -> list[_Value]:
    albumins = counted_albumins(results, labs, config)
    # A total the lab's own corrected calcium replaces is not a second calcium, here either.
    replaced = replaced_totals(results, labs, config)
    out: list[_Value] = []
    for r in results:
        analyte = _TREND_ANALYTES.get(r.analyte)
        if analyte is None or r.result_key in replaced:
            continue
        canonical = canonical_value(r, albumins, labs, config)
        if canonical is not None:
            out.append(_Value(r, analyte, *canonical))
    return out


def _baseline(
    values: Sequence[_Value], analyte: str, start: datetime, end: datetime
) -> _Value | None:
    found = [
        v
        for v in values
        if v.analyte == analyte
        and v.result.comparator.strip() in ("", "=")
        and v.value > 0
        and start <= v.result.observed_at <= end
    ]
    return max(found, key=lambda v: (v.result.observed_at, v.result.result_key), default=None)


def _in_risk(episode: AtRiskEpisode, at: datetime) -> tuple[int, int] | None:
    """(dose index, antiresorptive index) that put ``at`` at risk, rules.py style, or None.

    Every dose counts (CLINICAL.md "Edge semantics"): the latest dose whose window holds
    ``at`` and that has an antiresorptive overlapping ``[dose, at]``; a later dose without
    one never hides an earlier dose that has one.
    """
    a = episode.antiresorptives
    best: tuple[tuple[object, ...], int, int] | None = None
    for i, iron in enumerate(episode.doses):
        if not iron.start <= at <= iron.end:
            continue
        overlapping = [j for j, x in enumerate(a) if x.start <= at and x.end >= iron.start]
        if not overlapping:
            continue
        j = max(overlapping, key=lambda k: (a[k].start, a[k].end, a[k].drug, a[k].order_key))
        rank = (iron.start, i)
        if best is None or rank > best[0]:
            best = (rank, i, j)
    return None if best is None else (best[1], best[2])


def trend_findings(
    history: PatientHistory,
    drugs: DrugCatalog,
    labs: LabCatalog,
    config: RuleConfig,
    now: datetime,
    *,
    drop_fraction: float = DEFAULT_DROP_FRACTION,
    baseline_days_before: int = MonitoringConfig.baseline_days_before,
) -> list[TrendFinding]:
    """Current trend findings of one patient, sorted by dedup key (see the module doc).

    Pure; never raises for bad data (unknown units and drugs are skipped).
    """
    episodes = at_risk_episodes(history, drugs, config, now)
    if not episodes:
        return []
    values = _values(history.results, labs, config)
    backfill = timedelta(days=config.backfill_days)
    out: list[TrendFinding] = []
    for episode in episodes:
        since = episode.start - timedelta(days=baseline_days_before)
        for analyte in (ANALYTE_PHOSPHATE, ANALYTE_CALCIUM, ANALYTE_IONIZED_CALCIUM):
            base = _baseline(values, analyte, since, episode.start)
            if base is None:
                continue
            worst: tuple[_Value, int, int] | None = None
            for v in values:
                at = v.result.observed_at
                if v.analyte != analyte or at <= base.result.observed_at:
                    continue
                if (base.value - v.value) / base.value < drop_fraction - _EPSILON:
                    continue
                risk = _in_risk(episode, at)
                if risk is None:
                    continue
                if worst is None or (v.value, at, v.result.result_key) < (
                    worst[0].value,
                    worst[0].result.observed_at,
                    worst[0].result.result_key,
                ):
                    worst = (v, *risk)
            if worst is None:
                continue
            v, i, j = worst
            iron = episode.doses[i]
            finding = Finding(
                rule=RULE_TREND,
                dedup_key=dedup_key(RULE_TREND, history.patient_id, analyte, episode.start),
                patient_id=history.patient_id,
                analyte=analyte,
                severity=Severity.WARNING,
                result=v.result,
                value_canonical=v.value,
                corrected_for_albumin=v.corrected,
                iron=iron,
                episode_start=episode.start,
                days_since_iron=(v.result.observed_at - iron.start) // timedelta(days=1),
                antiresorptive=episode.antiresorptives[j],
                backfilled=now - v.result.observed_at > backfill,
            )
            out.append(
                TrendFinding(finding, base.result, base.value, (base.value - v.value) / base.value)
            )
    out.sort(key=lambda t: t.dedup_key)
    return out


def plan_trend_notifications(
    previous: Mapping[str, AlertState],
    trends: Sequence[TrendFinding],
    findings: Sequence[Finding],
) -> list[NotificationPlan]:
    """Events for the trend alerts of one patient, given the interaction rule's findings.

    ``plan_notifications`` over the trend findings, except that no "alert" or "update" is
    sent for a trend whose (analyte, episode) also has an interaction finding (``findings``,
    from ``evaluate_patient``): that alert already tells the team, at WARNING or above, and one
    result must not produce two messages. A covered trend is still *present*, so an open trend
    alert is not "resolved" by being covered; it resolves only when the fall itself is gone
    (say, a corrected result). ``previous`` holds the stored states of trend keys only.
    Sorted by dedup key; never raises.
    """
    covered = {(f.analyte, f.episode_start) for f in findings}
    covered_keys = {t.dedup_key for t in trends if (t.analyte, t.episode_start) in covered}
    plans = plan_notifications(previous, [t.finding for t in trends])
    return [p for p in plans if p.event == "resolved" or p.dedup_key not in covered_keys]
