"""Monitoring plan and reminders for at-risk iron episodes (CLINICAL.md advice).

CLINICAL.md: "check phosphate and calcium before IV iron; ... one schedule given is baseline,
1 week and 3 weeks after starting iron, then monthly for 2-3 months". This module turns that
schedule into dated points for every *at-risk episode* and says which reminders are due.

At-risk episode: an iron episode (doses grouped exactly as the interaction rule groups them: a
dose inside an earlier dose's risk window continues the episode) in which some dose's risk
window ``[dose, dose + iron_window_days]`` overlaps an antiresorptive effect interval. The
moment the risk began (``trigger_at``) is the earliest ``max(dose, antiresorptive start)`` over
the overlapping pairs: the dose time when the iron is given under an active antiresorptive, the
antiresorptive time when it is given inside an open iron window.

Points, with ``s`` = the episode's first dose and ``g`` = ``grace_days``:

- ``baseline``: window ``[s - baseline_days_before, s]``, due at ``s``;
- ``day N`` for N in ``points_days``: window ``[s + N - g, s + N + g]``, due at ``s + N``;
- ``month k`` for k in 1..``monthly_months``: window ``[s + 30k - g, s + 30k + g]``.

A point is *satisfied* when a phosphate and a calcium (total, lab-corrected or ionized) with a
counted status and a numeric value both lie in its window (closed). A point whose window ended
before ``trigger_at`` is left out of the plan: the patient was not at risk while it was due
(the order-time advisory covers that case instead of a reminder nobody could have acted on).

Reminders (``due_reminders``), chosen so that a restart never repeats one and a stale backlog
never floods a channel:

- due once ``now > window end`` (the baseline's end is the dose time: a missing baseline is
  reminded at dose time, "no baseline phosphate/calcium before the iron" - a draw right after
  the dose is still the best baseline left);
- not when the point is *followed up*: both analytes drawn at or after the window start, even
  after the window closed (a late draw answers the reminder, "a result arriving clears it");
- not when a later point of the same episode is also past its window end (superseded: only
  the most recent missed check is worth a message, e.g. after downtime);
- not when its id is in ``already_sent``. The id is ``dedup_key(RULE_MONITORING, patient,
  label, episode_start)``: stable across processes and restarts.

``cleared_reminders`` names sent reminders whose point has since been followed up, so the
service can close them on the worklist. Pure: no I/O, no clock; ``now`` is a parameter.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.catalog import DrugCatalog
from alerts.dedup import dedup_key
from alerts.exposures import derive_exposures
from alerts.model import (
    ANALYTE_CALCIUM,
    ANALYTE_CORRECTED_CALCIUM,
    ANALYTE_IONIZED_CALCIUM,
    ANALYTE_PHOSPHATE,
    Exposure,
    PatientHistory,
    RuleConfig,
    StoredResult,
)

# Episode grouping must match the interaction rule's, or alerts and plans of "one episode"
# would disagree.
from alerts.rules import iron_episodes

RULE_MONITORING = "iron-antiresorptive-monitoring"

# "Monthly" checks fall on episode start + 30 k days: a fixed step keeps due dates stable
# whatever calendar month the episode starts in.
DAYS_PER_MONTH = 30

# Results that count as "calcium" for a monitoring check: total, lab-corrected or ionized.
CALCIUM_ANALYTES = (ANALYTE_CALCIUM, ANALYTE_CORRECTED_CALCIUM, ANALYTE_IONIZED_CALCIUM)
MINERALS = ("phosphate", "calcium")  # what a check needs, as named in reminders


@dataclass(frozen=True)
class MonitoringConfig:
    """The schedule; defaults from CLINICAL.md ("baseline, 1 week and 3 weeks after starting
    iron, then monthly for 2-3 months") and the product requirement "baseline (within 30 days
    before the first dose)". ``grace_days`` is how far from the due day a draw still counts."""

    baseline_days_before: int = 30
    points_days: tuple[int, ...] = (7, 21)
    monthly_months: int = 3
    grace_days: int = 3

    def __post_init__(self) -> None:
        """Raises ValueError naming the field; settings validate earlier, this is the guard."""
        if self.baseline_days_before < 0:
            raise ValueError("monitoring.baseline_days_before: must be a non-negative integer")
        if any(n <= 0 for n in self.points_days):
            raise ValueError("monitoring.points_days: must be positive integers")
        if self.monthly_months < 0:
            raise ValueError("monitoring.monthly_months: must be a non-negative integer")
        if self.grace_days < 0:
            raise ValueError("monitoring.grace_days: must be a non-negative integer")


@dataclass(frozen=True)
class AtRiskEpisode:
    """An iron episode during which an antiresorptive effect interval was active."""

    patient_id: str
    start: datetime  # first dose of the episode (the alerts' episode_start)
    end: datetime  # end of the last dose's risk window
    doses: tuple[Exposure, ...]  # every IV iron dose of the episode, by start
    antiresorptives: tuple[Exposure, ...]  # intervals overlapping some dose's window
    trigger_iron: Exposure  # the pair that made the episode at risk first
    trigger_antiresorptive: Exposure
    trigger_at: datetime  # max(trigger_iron.start, trigger_antiresorptive.start)

    @property
    def trigger_order_key(self) -> str:
        """The order whose dose completed the interaction (the later of the pair)."""
        if self.trigger_antiresorptive.start > self.trigger_iron.start:
            return self.trigger_antiresorptive.order_key
        return self.trigger_iron.order_key

    @property
    def trigger_provider(self) -> str:
        if self.trigger_antiresorptive.start > self.trigger_iron.start:
            return self.trigger_antiresorptive.ordering_provider
        return self.trigger_iron.ordering_provider

    @property
    def prescribers(self) -> tuple[str, ...]:
        """Distinct non-empty ordering providers of the doses and antiresorptives, sorted."""
        found = {e.ordering_provider for e in (*self.doses, *self.antiresorptives)}
        return tuple(sorted(p for p in found if p))


def _overlaps(a: Exposure, dose: Exposure) -> bool:
    return a.start <= dose.end and a.end >= dose.start


def at_risk_episodes(
    history: PatientHistory, drugs: DrugCatalog, config: RuleConfig, now: datetime
) -> list[AtRiskEpisode]:
    """The patient's at-risk iron episodes, sorted by start (see the module doc).

    ``now`` closes open-ended ongoing orders, as in ``derive_exposures``. Never raises.
    """
    exposures = derive_exposures(history.orders, drugs, config, now)
    irons = sorted(
        (e for e in exposures if e.drug_class == "iv_iron"),
        key=lambda e: (e.start, e.end, e.drug, e.order_key),
    )
    antiresorptives = [e for e in exposures if e.drug_class == "antiresorptive"]
    if not irons or not antiresorptives:
        return []
    episode_of = iron_episodes(irons)
    grouped: dict[datetime, list[Exposure]] = {}
    for i, dose in enumerate(irons):
        grouped.setdefault(episode_of[i], []).append(dose)

    episodes: list[AtRiskEpisode] = []
    for start, doses in sorted(grouped.items()):
        pairs = [(d, a) for d in doses for a in antiresorptives if _overlaps(a, d)]
        if not pairs:
            continue
        iron, anti = min(
            pairs,
            key=lambda p: (max(p[0].start, p[1].start), p[0].start, p[1].start, p[1].order_key),
        )
        overlapping = {a for _, a in pairs}
        episodes.append(
            AtRiskEpisode(
                patient_id=history.patient_id,
                start=start,
                end=max(d.end for d in doses),
                doses=tuple(doses),
                antiresorptives=tuple(
                    sorted(overlapping, key=lambda a: (a.start, a.end, a.drug, a.order_key))
                ),
                trigger_iron=iron,
                trigger_antiresorptive=anti,
                trigger_at=max(iron.start, anti.start),
            )
        )
    return episodes


# --------------------------------------------------------------------------------------------
# the plan


@dataclass(frozen=True)
class DuePoint:
    """One scheduled check of one at-risk episode, with what the stored results say of it."""

    key: str  # dedup_key(RULE_MONITORING, patient_id, label, episode_start): the reminder id
    patient_id: str
    episode_start: datetime
    label: str  # "baseline", "day 7", "day 21", "month 1", ...
    due_at: datetime
    window: tuple[datetime, datetime]  # closed
    phosphate: StoredResult | None  # latest counted phosphate in the window
    calcium: StoredResult | None  # latest counted calcium (total, corrected, ionized) in it
    followed_up: bool  # both drawn at or after the window start (possibly late)
    ordering_provider: str  # of the episode's first iron dose: where reminders go

    @property
    def satisfied(self) -> bool:
        return self.phosphate is not None and self.calcium is not None

    @property
    def satisfied_by(self) -> tuple[StoredResult, StoredResult] | None:
        """(phosphate, calcium) when satisfied, else None."""
        if self.phosphate is None or self.calcium is None:
            return None
        return (self.phosphate, self.calcium)

    @property
    def missing(self) -> tuple[str, ...]:
        """Which minerals the window lacks: ("phosphate",), ("calcium",), both or ()."""
        return tuple(
            name
            for name, got in zip(MINERALS, (self.phosphate, self.calcium), strict=True)
            if got is None
        )


def _counted(results: Iterable[StoredResult], config: RuleConfig) -> list[StoredResult]:
    statuses = {s.upper() for s in config.counted_statuses}
    return [
        r
        for r in results
        if r.value is not None
        and r.status.strip().upper() in statuses
        and (r.analyte == ANALYTE_PHOSPHATE or r.analyte in CALCIUM_ANALYTES)
    ]


def _latest(results: Sequence[StoredResult], start: datetime, end: datetime) -> StoredResult | None:
    inside = [r for r in results if start <= r.observed_at <= end]
    return max(inside, key=lambda r: (r.observed_at, r.result_key), default=None)


def _schedule(
    start: datetime, monitoring: MonitoringConfig
) -> list[tuple[str, datetime, datetime, datetime]]:
    """(label, due_at, window start, window end) of every point, in schedule order."""
    grace = timedelta(days=monitoring.grace_days)
    points = [("baseline", start, start - timedelta(days=monitoring.baseline_days_before), start)]
    offsets = [(f"day {n}", n) for n in monitoring.points_days]
    offsets += [(f"month {k}", DAYS_PER_MONTH * k) for k in range(1, monitoring.monthly_months + 1)]
    for label, n in offsets:
        due = start + timedelta(days=n)
        points.append((label, due, due - grace, due + grace))
    return points


def monitoring_plan(
    history: PatientHistory,
    drugs: DrugCatalog,
    config: RuleConfig,
    monitoring: MonitoringConfig,
    now: datetime,
) -> list[DuePoint]:
    """Every applicable point of every at-risk episode, sorted by (due_at, label, key).

    ``now`` only closes open-ended ongoing antiresorptive orders (as ``derive_exposures``
    does); it does not decide what is due - ``due_reminders`` does. Never raises.
    """
    results = _counted(history.results, config)
    phosphates = [r for r in results if r.analyte == ANALYTE_PHOSPHATE]
    calciums = [r for r in results if r.analyte in CALCIUM_ANALYTES]
    plan: list[DuePoint] = []
    for episode in at_risk_episodes(history, drugs, config, now):
        # The schedule follows the iron ("after starting iron"): its first prescriber is asked.
        provider = episode.doses[0].ordering_provider or episode.trigger_provider
        for label, due_at, w_start, w_end in _schedule(episode.start, monitoring):
            if w_end < episode.trigger_at:
                continue  # not at risk while this check was due
            followed = any(r.observed_at >= w_start for r in phosphates) and any(
                r.observed_at >= w_start for r in calciums
            )
            plan.append(
                DuePoint(
                    key=dedup_key(RULE_MONITORING, history.patient_id, label, episode.start),
                    patient_id=history.patient_id,
                    episode_start=episode.start,
                    label=label,
                    due_at=due_at,
                    window=(w_start, w_end),
                    phosphate=_latest(phosphates, w_start, w_end),
                    calcium=_latest(calciums, w_start, w_end),
                    followed_up=followed,
                    ordering_provider=provider,
                )
            )
    plan.sort(key=lambda p: (p.due_at, p.label, p.key))
    return plan


# --------------------------------------------------------------------------------------------
# reminders


@dataclass(frozen=True)
class Reminder:
    """A `reminder` notification: a scheduled check of an at-risk episode was not done."""

    id: str  # == DuePoint.key; stable, so a restart never sends one twice
    patient_id: str
    episode_start: datetime
    label: str
    due_at: datetime
    window: tuple[datetime, datetime]
    missing: tuple[str, ...]  # "phosphate" and/or "calcium"
    reason: str  # short, PHI-free text for the message
    ordering_provider: str


def _reason(point: DuePoint) -> str:
    what = "/".join(point.missing)
    if point.label == "baseline":
        return f"no baseline {what} before the iron"
    return f"{point.label} {what} check after IV iron not done"


def due_reminders(
    plan: Sequence[DuePoint], now: datetime, already_sent: Collection[str]
) -> list[Reminder]:
    """Reminders to send now, sorted by (due_at, id); see the module doc. Never raises."""
    latest_overdue: dict[tuple[str, datetime], datetime] = {}
    for p in plan:
        if now > p.window[1]:
            episode = (p.patient_id, p.episode_start)
            latest_overdue[episode] = max(latest_overdue.get(episode, p.window[1]), p.window[1])
    out: list[Reminder] = []
    for p in plan:
        if not now > p.window[1] or p.followed_up or p.satisfied or p.key in already_sent:
            continue
        if latest_overdue[(p.patient_id, p.episode_start)] > p.window[1]:
            continue  # superseded by a later missed point of the same episode
        out.append(
            Reminder(
                id=p.key,
                patient_id=p.patient_id,
                episode_start=p.episode_start,
                label=p.label,
                due_at=p.due_at,
                window=p.window,
                missing=p.missing,
                reason=_reason(p),
                ordering_provider=p.ordering_provider,
            )
        )
    out.sort(key=lambda r: (r.due_at, r.id))
    return out


def cleared_reminders(plan: Sequence[DuePoint], already_sent: Collection[str]) -> list[str]:
    """Ids of sent reminders whose point has since been followed up (sorted). Never raises."""
    return sorted(p.key for p in plan if p.key in already_sent and (p.followed_up or p.satisfied))


def next_check_at(plan: Sequence[DuePoint], now: datetime) -> datetime | None:
    """The earliest window end not yet passed (``>= now``), or None.

    A point becomes due strictly after its window end, so a scheduler job should run
    ``due_reminders`` just after this moment (e.g. one second later).
    """
    return min((p.window[1] for p in plan if p.window[1] >= now), default=None)
