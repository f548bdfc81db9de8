"""Monitoring plan and reminders: dates, windows, satisfaction, supersession, restarts."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from alerts.dedup import dedup_key
from alerts.model import StoredOrder, StoredResult
from alerts.monitoring import (
    RULE_MONITORING,
    DuePoint,
    MonitoringConfig,
    at_risk_episodes,
    cleared_reminders,
    due_reminders,
    monitoring_plan,
    next_check_at,
)
from tests.alerts.helpers import (
    CONFIG,
    DRUGS,
    IRON,
    PATIENT,
    PROLIA,
    T0,
    days,
    history,
    hours,
    order,
    result,
)

MON = MonitoringConfig()
FCM = "ferric_carboxymaltose"


def plan(
    orders: list[StoredOrder],
    results: list[StoredResult],
    monitoring: MonitoringConfig = MON,
    now: datetime | None = None,
) -> list[DuePoint]:
    return monitoring_plan(
        history(orders, results), DRUGS, CONFIG, monitoring, T0 if now is None else now
    )


def both(at: datetime, tag: str = "", calcium: str = "calcium") -> list[StoredResult]:
    """A phosphate and a calcium drawn at ``at``."""
    unit = "mmol/L" if calcium == "ionized_calcium" else "mg/dL"
    return [
        result(f"P{tag}{at.isoformat()}", "phosphate", 3.2, at),
        result(f"C{tag}{at.isoformat()}", calcium, 9.1 if unit == "mg/dL" else 1.2, at, unit),
    ]


def labels(points: list[DuePoint]) -> list[str]:
    return [p.label for p in points]


def by_label(points: list[DuePoint]) -> dict[str, DuePoint]:
    return {p.label: p for p in points}


def test_plan_dates_and_windows() -> None:
    # defaults: baseline, day 7, day 21, months 1-3 at +30 k days, windows +/- 3 days
    points = by_label(plan([IRON, PROLIA], []))
    assert list(points) == ["baseline", "day 7", "day 21", "month 1", "month 2", "month 3"]
    assert points["baseline"].window == (T0 - days(30), T0)
    assert points["baseline"].due_at == T0
    assert points["day 7"].due_at == T0 + days(7)
    assert points["day 7"].window == (T0 + days(4), T0 + days(10))
    assert points["day 21"].window == (T0 + days(18), T0 + days(24))
    assert points["month 3"].due_at == T0 + days(90)
    assert points["month 3"].window == (T0 + days(87), T0 + days(93))
    assert all(p.episode_start == T0 and p.patient_id == PATIENT for p in points.values())
    assert points["day 7"].key == dedup_key(RULE_MONITORING, PATIENT, "day 7", T0)
    assert points["day 7"].ordering_provider == "DR1"


@pytest.mark.parametrize(
    ("monitoring", "expected"),
    [
        # two monthly points instead of three
        (
            MonitoringConfig(monthly_months=2),
            ["baseline", "day 7", "day 21", "month 1", "month 2"],
        ),
        # no monthly points at all
        (MonitoringConfig(monthly_months=0), ["baseline", "day 7", "day 21"]),
        # extra fixed point at day 14
        (
            MonitoringConfig(points_days=(7, 14, 21), monthly_months=1),
            ["baseline", "day 7", "day 14", "day 21", "month 1"],
        ),
    ],
)
def test_monthly_and_fixed_point_count(monitoring: MonitoringConfig, expected: list[str]) -> None:
    assert labels(plan([IRON, PROLIA], [], monitoring)) == expected


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        # iron without antiresorptive: no at-risk episode, no plan
        ([IRON], []),
        # Prolia worn off (211 days before): no plan
        ([IRON, order("D", "denosumab_prolia", T0 - days(211))], []),
        # oral "iron" order (route PO) gives no exposure: no plan
        ([replace(IRON, route="PO"), PROLIA], []),
        # Prolia given on day 3 inside the iron window: baseline was before the risk, dropped
        (
            [IRON, order("D", "denosumab_prolia", T0 + days(3))],
            ["day 7", "day 21", "month 1", "month 2", "month 3"],
        ),
        # Prolia given on day 12: day 7's window (ends day 10) was before the risk
        (
            [IRON, order("D", "denosumab_prolia", T0 + days(12))],
            ["day 21", "month 1", "month 2", "month 3"],
        ),
    ],
)
def test_which_episodes_get_a_plan(orders: list[StoredOrder], expected: list[str]) -> None:
    assert labels(plan(orders, [])) == expected


def test_second_dose_keeps_one_plan() -> None:
    # a second dose inside the first window continues the episode: one plan from the first
    second = order("IRON2", FCM, T0 + days(7), route="IV")
    points = plan([IRON, second, PROLIA], [])
    assert {p.episode_start for p in points} == {T0}
    assert len(points) == 6


def test_new_episode_gets_its_own_plan() -> None:
    # a dose after the first window closed is a new episode with its own plan and keys
    second = order("IRON2", FCM, T0 + days(40), route="IV")
    points = plan([IRON, second, PROLIA], [])
    assert sorted({p.episode_start for p in points}) == [T0, T0 + days(40)]
    assert len({p.key for p in points}) == 12


SAT_CASES = [
    # both minerals inside the day-7 window satisfy it
    (both(T0 + days(7)), "day 7", True),
    # window edges are inclusive (day 4 and day 10)
    (both(T0 + days(4)), "day 7", True),
    (both(T0 + days(10)), "day 7", True),
    # day 11 is outside day 7's window
    (both(T0 + days(11)), "day 7", False),
    # phosphate alone does not satisfy
    ([result("P", "phosphate", 3.0, T0 + days(7))], "day 7", False),
    # calcium alone does not satisfy
    ([result("C", "calcium", 9.0, T0 + days(7))], "day 7", False),
    # ionized calcium counts as the calcium of a check
    (both(T0 + days(7), calcium="ionized_calcium"), "day 7", True),
    # lab-reported corrected calcium counts too
    (both(T0 + days(7), calcium="corrected_calcium"), "day 7", True),
    # a preliminary phosphate does not count
    (
        [
            result("P", "phosphate", 3.0, T0 + days(7), status="P"),
            result("C", "calcium", 9.0, T0 + days(7)),
        ],
        "day 7",
        False,
    ),
    # a non-numeric phosphate ("hemolysed") does not count
    (
        [result("P", "phosphate", None, T0 + days(7)), result("C", "calcium", 9.0, T0 + days(7))],
        "day 7",
        False,
    ),
    # baseline 29 days before the dose counts
    (both(T0 - days(29)), "baseline", True),
    # baseline 31 days before the dose does not
    (both(T0 - days(31)), "baseline", False),
    # a draw at the dose instant is still baseline
    (both(T0), "baseline", True),
    # a draw 1 h after the dose is not baseline
    (both(T0 + hours(1)), "baseline", False),
    # month 2 is satisfied around day 60
    (both(T0 + days(62)), "month 2", True),
]


@pytest.mark.parametrize(("results", "label", "satisfied"), SAT_CASES)
def test_satisfied_by_results_in_window(
    results: list[StoredResult], label: str, satisfied: bool
) -> None:
    point = by_label(plan([IRON, PROLIA], results))[label]
    assert point.satisfied is satisfied
    assert (point.satisfied_by is not None) is satisfied


def test_latest_results_are_reported() -> None:
    # the point reports the latest phosphate and calcium in its window
    results = both(T0 + days(5), "a") + both(T0 + days(8), "b")
    point = by_label(plan([IRON, PROLIA], results))["day 7"]
    assert point.satisfied_by is not None
    assert [r.observed_at for r in point.satisfied_by] == [T0 + days(8)] * 2
    assert point.missing == ()


REMINDER_CASES = [
    # day 9, no draws: day 7's window (ends day 10) is still open, so only the baseline is due
    ([], T0 + days(9), set(), ["baseline"]),
    # at the dose instant nothing is due yet (due strictly after the window end)
    ([], T0, set(), []),
    # one hour after the dose with no baseline: the baseline reminder
    ([], T0 + hours(1), set(), ["baseline"]),
    # baseline present: nothing at dose time
    (both(T0 - days(3)), T0 + hours(1), set(), []),
    # exactly at day 7's window end: not due yet
    (both(T0 - days(3)), T0 + days(10), set(), []),
    # just after day 7's window end with no draw: the day-7 reminder
    (both(T0 - days(3)), T0 + days(10) + hours(1), set(), ["day 7"]),
    # day-7 draw present: no reminder
    (both(T0 - days(3)) + both(T0 + days(6)), T0 + days(11), set(), []),
    # already sent (restart): not repeated
    (
        both(T0 - days(3)),
        T0 + days(11),
        {dedup_key(RULE_MONITORING, PATIENT, "day 7", T0)},
        [],
    ),
    # late draw on day 12 (after the window) answers the day-7 reminder
    (both(T0 - days(3)) + both(T0 + days(12)), T0 + days(13), set(), []),
    # after downtime, baseline and day 7 both missed: only the most recent (day 7) is sent
    ([], T0 + days(11), set(), ["day 7"]),
    # day 21 missed, day 7 missed too: only day 21
    ([], T0 + days(25), set(), ["day 21"]),
    # day 7 done, day 21 missed: day 21
    (both(T0 + days(7)), T0 + days(25), set(), ["day 21"]),
    # month 3 missed long ago: one reminder, not six
    ([], T0 + days(200), set(), ["month 3"]),
]


@pytest.mark.parametrize(("results", "now", "sent", "expected"), REMINDER_CASES)
def test_due_reminders(
    results: list[StoredResult], now: datetime, sent: set[str], expected: list[str]
) -> None:
    points = plan([IRON, PROLIA], results, now=now)
    assert [r.label for r in due_reminders(points, now, sent)] == expected


def test_reminder_content() -> None:
    # id is the point key; reason names what is missing; goes to the ordering provider
    now = T0 + days(11)
    points = plan([IRON, PROLIA], [result("C", "calcium", 9.0, T0 + days(6))] + both(T0 - days(2)))
    [r] = due_reminders(points, now, set())
    assert r.id == dedup_key(RULE_MONITORING, PATIENT, "day 7", T0)
    assert r.missing == ("phosphate",)
    assert r.reason == "day 7 phosphate check after IV iron not done"
    assert r.ordering_provider == "DR1"
    assert r.window == (T0 + days(4), T0 + days(10))


def test_baseline_reminder_reason() -> None:
    # a missing baseline is reminded at dose time with its own wording
    [r] = due_reminders(plan([IRON, PROLIA], []), T0 + hours(1), set())
    assert r.reason == "no baseline phosphate/calcium before the iron"


def test_reminder_ids_stable_across_runs() -> None:
    # the same history evaluated twice (a restart) yields the same reminder ids
    now = T0 + days(11)
    first = due_reminders(plan([IRON, PROLIA], []), now, set())
    again = due_reminders(plan([PROLIA, IRON], []), now, set())
    assert [r.id for r in first] == [r.id for r in again]
    sent = {r.id for r in first}
    assert due_reminders(plan([IRON, PROLIA], []), now + hours(1), sent) == []


def test_result_arriving_later_clears() -> None:
    # a day-7 reminder was sent; a draw on day 11 arrives: cleared, and nothing new is due
    sent = {dedup_key(RULE_MONITORING, PATIENT, "day 7", T0)}
    before = plan([IRON, PROLIA], [], now=T0 + days(11))
    assert cleared_reminders(before, sent) == []
    after = plan([IRON, PROLIA], both(T0 + days(11)), now=T0 + days(12))
    assert cleared_reminders(after, sent) == sorted(sent)
    assert due_reminders(after, T0 + days(12), sent) == []


def test_in_window_result_received_late_prevents_the_reminder() -> None:
    # drawn on day 9, received on day 11: the plan at day 11 already counts it
    late = [replace(r, received_at=T0 + days(11)) for r in both(T0 + days(9))]
    points = plan([IRON, PROLIA], late + both(T0 - days(1)), now=T0 + days(11))
    assert due_reminders(points, T0 + days(11), set()) == []


def test_next_check_at() -> None:
    # the scheduler looks again at the next window end
    points = plan([IRON, PROLIA], [])
    assert next_check_at(points, T0 + days(1)) == T0 + days(10)
    assert next_check_at(points, T0 + days(200)) is None


def test_at_risk_episode_trigger() -> None:
    # Prolia given on day 3 inside the iron window: the antiresorptive order triggered the risk
    [episode] = at_risk_episodes(
        history([IRON, order("D", "denosumab_prolia", T0 + days(3))], []), DRUGS, CONFIG, T0
    )
    assert episode.trigger_at == T0 + days(3)
    assert episode.trigger_order_key == "D"
    assert episode.start == T0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"grace_days": -1},  # negative grace
        {"points_days": (7, 0)},  # a point on the dose day itself is the baseline's job
        {"monthly_months": -1},  # negative month count
        {"baseline_days_before": -5},  # negative look-back
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="monitoring\\."):
        MonitoringConfig(**kwargs)  # type: ignore[arg-type]


def test_reminders_go_to_the_iron_prescriber() -> None:
    # Reclast (DR2) given inside the iron window triggers the risk; the plan follows the iron (DR1)
    reclast = replace(
        order("Z", "zoledronic_acid_reclast", T0 + days(3), route="IV"), ordering_provider="DR2"
    )
    [r] = due_reminders(plan([IRON, reclast], []), T0 + days(11), set())
    assert (r.label, r.ordering_provider) == ("day 7", "DR1")
