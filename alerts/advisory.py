"""Order-time advisory ``iron-antiresorptive-advisory``, as a pure function.

When IV iron is ordered for a patient whose antiresorptive effect interval is active, or an
antiresorptive is ordered inside an open iron risk window, the pharmacy team and the ordering
provider get an advisory - not a page - before the minerals fall: the interaction, the latest
phosphate and calcium, and the options CLINICAL.md gives (baseline labs, a lower-risk iron,
the monitoring schedule, inform every prescriber).

There is one advisory per at-risk iron episode (``alerts.monitoring.at_risk_episodes``); its
dedup key is ``dedup_key(RULE_ADVISORY, patient_id, "advisory", episode_start)``, so further
doses of the same episode, re-evaluation and restarts never send another. The triggering pair
is the one that made the episode at risk first; ``trigger_at`` is the later of its two start
times (the iron dose, or the antiresorptive dose given inside the iron window).

Choices where CLINICAL.md and the product requirements are silent:

- "Latest phosphate and calcium" are the latest counted (``config.counted_statuses``), numeric
  results in ``[iron dose - lookback_days, iron dose]`` of the triggering iron: the pre-iron
  values, which are what "check before IV iron" asks for. Calcium is total, lab-corrected or
  ionized, whichever is latest. Results whose unit the lab catalog does not understand are
  skipped (the service dead-letters them; an advisory must not show a value of unknown scale).
- ``late``: ``now - trigger_at > late_days`` (default ``config.backfill_days``, CLINICAL.md's
  7 days for backfilled results). A late advisory is history, not prevention: the service
  puts it on the worklist instead of sending it. A dose scheduled in the future is never late.
- The lower-risk formulation suggested is ferric derisomaltose when the catalog has it, else
  the catalog's first IV iron with ``risk = "lower"``; it is only suggested when the
  triggering iron is ``risk = "high"`` (ferric carboxymaltose).

Pure: no I/O, no clock; ``now`` is a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.catalog import DrugCatalog, LabCatalog
from alerts.dedup import dedup_key
from alerts.model import ANALYTE_PHOSPHATE, Exposure, PatientHistory, RuleConfig, StoredResult
from alerts.monitoring import (
    CALCIUM_ANALYTES,
    DAYS_PER_MONTH,
    MonitoringConfig,
    at_risk_episodes,
)

RULE_ADVISORY = "iron-antiresorptive-advisory"
ADVISORY_ANALYTE = "advisory"  # the "analyte" part of the advisory's dedup key
# A baseline older than a month says little about the mineral levels the iron meets.
DEFAULT_LOOKBACK_DAYS = 30
PREFERRED_LOWER_RISK_IRON = "ferric_derisomaltose"  # CLINICAL.md, PHOSPHARE-IDA / -IBD

# CLINICAL.md "Risk by formulation" (PHOSPHARE-IDA, JAMA 2020; PHOSPHARE-IBD; 42 trials).
PHOSPHARE_EVIDENCE = (
    "hypophosphatemia 7.9 % vs 75.0 % and 8.1 % vs 73.7 % (PHOSPHARE-IDA, JAMA 2020), "
    "8.3 % vs 51.0 % (PHOSPHARE-IBD) for ferric derisomaltose vs ferric carboxymaltose"
)


@dataclass(frozen=True)
class Advisory:
    """One advisory: the interaction of one at-risk iron episode, before harm."""

    rule: str
    dedup_key: str
    patient_id: str
    iron: Exposure  # the triggering IV iron dose
    antiresorptive: Exposure  # the triggering antiresorptive interval
    episode_start: datetime
    trigger_at: datetime  # when the interaction began (later start of the pair)
    trigger_order_key: str  # the order that completed the pair
    ordering_provider: str  # of that order: who receives the advisory besides the pharmacy
    prescribers: tuple[str, ...]  # every ordering provider of the episode's iron and antiresorptive
    phosphate: StoredResult | None  # latest in the lookback before the iron dose
    calcium: StoredResult | None  # latest total / corrected / ionized calcium, same window
    lookback_days: int  # for "none in the last N days"
    iron_risk: str  # the iron's catalog risk: "high" | "lower" | ""
    options: tuple[str, ...]  # suggested actions, in the order to show them
    late: bool  # trigger_at older than late_days at evaluation: worklist, not a message


def _latest(
    results: Sequence[StoredResult],
    analytes: Sequence[str],
    start: datetime,
    end: datetime,
    labs: LabCatalog,
    config: RuleConfig,
) -> StoredResult | None:
    statuses = {s.upper() for s in config.counted_statuses}
    found = [
        r
        for r in results
        if r.analyte in analytes
        and r.value is not None
        and r.status.strip().upper() in statuses
        and start <= r.observed_at <= end
        and labs.understands(r.analyte, r.unit)
    ]
    return max(found, key=lambda r: (r.observed_at, r.result_key), default=None)


def _lower_risk_name(drugs: DrugCatalog) -> str | None:
    preferred = drugs.get(PREFERRED_LOWER_RISK_IRON)
    if preferred is not None and preferred.risk == "lower":
        return preferred.name
    for key in drugs.keys("iv_iron"):
        if drugs[key].risk == "lower":
            return drugs[key].name
    return None


def schedule_text(monitoring: MonitoringConfig) -> str:
    """The configured schedule in words: "baseline, day 7, day 21, then every 30 days for 3
    months" with the defaults."""
    parts = ["baseline"] + [f"day {n}" for n in monitoring.points_days]
    text = ", ".join(parts)
    if monitoring.monthly_months > 0:
        months = "month" if monitoring.monthly_months == 1 else "months"
        text += f", then every {DAYS_PER_MONTH} days for {monitoring.monthly_months} {months}"
    return text


def _options(
    missing: Sequence[str],
    iron_risk: str,
    drugs: DrugCatalog,
    monitoring: MonitoringConfig,
    lookback_days: int,
) -> tuple[str, ...]:
    # Each option is phrased as a suggestion to the prescriber ("consider ..."): an advisory
    # informs a decision that is theirs, and a line such as "no phosphate in the 30 days
    # before the iron dose" read after "Do:" sounded like an order to withhold phosphate.
    options: list[str] = []
    if not missing:
        options.append("consider checking phosphate and calcium before the iron dose (baseline)")
    else:
        options.append(
            "consider drawing baseline phosphate and calcium before the iron dose (no "
            f"{' or '.join(missing)} result in the {lookback_days} days before it)"
        )
    alternative = _lower_risk_name(drugs)
    if iron_risk == "high" and alternative is not None:
        options.append(
            f"consider a lower-risk iron formulation, e.g. {alternative}: {PHOSPHARE_EVIDENCE}"
        )
    options.append(
        "consider monitoring phosphate and calcium: "
        + schedule_text(monitoring)
        + " after the first dose; reminders follow if a check is missed"
    )
    options.append(
        "consider telling every prescriber of the iron and the antiresorptive about both"
    )
    return tuple(options)


def advisories(
    history: PatientHistory,
    drugs: DrugCatalog,
    labs: LabCatalog,
    config: RuleConfig,
    now: datetime,
    *,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    late_days: int | None = None,
    monitoring: MonitoringConfig | None = None,
) -> list[Advisory]:
    """One advisory per at-risk iron episode, sorted by (trigger_at, dedup_key).

    ``late_days`` defaults to ``config.backfill_days``; ``monitoring`` (for the schedule text)
    to ``MonitoringConfig()``. Pure; never raises for bad data (unknown drugs and units are
    skipped).
    """
    monitoring = monitoring if monitoring is not None else MonitoringConfig()
    late = timedelta(days=config.backfill_days if late_days is None else late_days)
    lookback = timedelta(days=lookback_days)
    out: list[Advisory] = []
    for episode in at_risk_episodes(history, drugs, config, now):
        iron = episode.trigger_iron
        since = iron.start - lookback
        phosphate = _latest(history.results, (ANALYTE_PHOSPHATE,), since, iron.start, labs, config)
        calcium = _latest(history.results, CALCIUM_ANALYTES, since, iron.start, labs, config)
        drug = drugs.get(iron.drug)
        risk = drug.risk if drug is not None else ""
        out.append(
            Advisory(
                rule=RULE_ADVISORY,
                dedup_key=dedup_key(
                    RULE_ADVISORY, history.patient_id, ADVISORY_ANALYTE, episode.start
                ),
                patient_id=history.patient_id,
                iron=iron,
                antiresorptive=episode.trigger_antiresorptive,
                episode_start=episode.start,
                trigger_at=episode.trigger_at,
                trigger_order_key=episode.trigger_order_key,
                ordering_provider=episode.trigger_provider,
                prescribers=episode.prescribers,
                phosphate=phosphate,
                calcium=calcium,
                lookback_days=lookback_days,
                iron_risk=risk,
                options=_options(
                    [n for n, r in (("phosphate", phosphate), ("calcium", calcium)) if r is None],
                    risk,
                    drugs,
                    monitoring,
                    lookback_days,
                ),
                late=now - episode.trigger_at > late,
            )
        )
    out.sort(key=lambda a: (a.trigger_at, a.dedup_key))
    return out
