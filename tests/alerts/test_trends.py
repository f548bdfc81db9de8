"""Trend rule: a fall from the pre-iron baseline warns even above the absolute thresholds."""

from __future__ import annotations

from datetime import datetime

import pytest

from alerts.dedup import dedup_key
from alerts.model import AlertState, Severity, StoredOrder, StoredResult
from alerts.rules import evaluate_patient
from alerts.trends import RULE_TREND, TrendFinding, plan_trend_notifications, trend_findings
from tests.alerts.helpers import (
    CONFIG,
    DRUGS,
    IRON,
    LABS,
    PATIENT,
    PROLIA,
    T0,
    days,
    history,
    hours,
    order,
    result,
)

FCM = "ferric_carboxymaltose"


def trends(
    orders: list[StoredOrder],
    results: list[StoredResult],
    now: datetime | None = None,
    **kw: float,
) -> list[TrendFinding]:
    if now is None:
        now = max(r.observed_at for r in results) + hours(1) if results else T0
    return trend_findings(history(orders, results), DRUGS, LABS, CONFIG, now, **kw)  # type: ignore[arg-type]


def phos(value: float, at: datetime, unit: str = "mg/dL", **kw: str) -> StoredResult:
    return result(f"P-{at.isoformat()}", "phosphate", value, at, unit, **kw)


def ca(value: float, at: datetime, unit: str = "mg/dL", analyte: str = "calcium") -> StoredResult:
    return result(f"C-{at.isoformat()}", analyte, value, at, unit)


def alb(value: float, at: datetime) -> StoredResult:
    return result(f"A-{at.isoformat()}", "albumin", value, at, "g/dL")


BASE = phos(4.0, T0 - days(2))  # pre-iron phosphate baseline 4.0 mg/dL

# (orders, results, expected [(analyte, rounded drop)])
CASES = [
    # 4.0 -> 2.8 is a 30 % fall, above the 2.5 warning threshold: trend warning
    ([IRON, PROLIA], [BASE, phos(2.8, T0 + days(10))], [("phosphate", 0.30)]),
    # 4.0 -> 2.84 is 29 %: nothing
    ([IRON, PROLIA], [BASE, phos(2.84, T0 + days(10))], []),
    # no baseline at all: nothing, however low
    ([IRON, PROLIA], [phos(2.6, T0 + days(10))], []),
    # a baseline 31 days before the first dose is too old: nothing
    ([IRON, PROLIA], [phos(4.0, T0 - days(31)), phos(2.6, T0 + days(10))], []),
    # the fall on day 29 lies outside the 28-day window: nothing
    ([IRON, PROLIA], [BASE, phos(2.6, T0 + days(29))], []),
    # no antiresorptive: iron alone is not this rule
    ([IRON], [BASE, phos(2.6, T0 + days(10))], []),
    # antiresorptive expired: nothing
    ([IRON, order("D", "denosumab_prolia", T0 - days(211))], [BASE, phos(2.6, T0 + days(10))], []),
    # SI units on both sides: 1.30 -> 0.90 mmol/L is a 31 % fall
    (
        [IRON, PROLIA],
        [phos(1.30, T0 - days(2), "mmol/L"), phos(0.90, T0 + days(10), "mmol/L")],
        [("phosphate", 0.31)],
    ),
    # mixed units: baseline 1.30 mmol/L (4.03 mg/dL), later 2.8 mg/dL: 30.5 % fall
    (
        [IRON, PROLIA],
        [phos(1.30, T0 - days(2), "mmol/L"), phos(2.8, T0 + days(10))],
        [("phosphate", 0.30)],
    ),
    # the latest baseline is used: 3.5 (day -1) -> 2.8 is only 20 %
    ([IRON, PROLIA], [BASE, phos(3.5, T0 - days(1)), phos(2.8, T0 + days(10))], []),
    # a bounded baseline (">4.0") is no reference: nothing
    ([IRON, PROLIA], [phos(4.0, T0 - days(2), comparator=">"), phos(2.6, T0 + days(10))], []),
    # "<2.8" means at most 2.8: counts as a 30 % fall
    ([IRON, PROLIA], [BASE, phos(2.8, T0 + days(10), comparator="<")], [("phosphate", 0.30)]),
    # a preliminary result never warns
    ([IRON, PROLIA], [BASE, phos(2.6, T0 + days(10), status="P")], []),
    # calcium 10.0 -> 7.0: 30 % fall (also below thresholds: the rule handles that separately)
    ([IRON, PROLIA], [ca(10.0, T0 - days(1)), ca(7.0, T0 + days(12))], [("calcium", 0.30)]),
    # calcium in mmol/L: 2.50 -> 1.74 is 30.4 %
    (
        [IRON, PROLIA],
        [ca(2.50, T0 - days(1), "mmol/L"), ca(1.74, T0 + days(12), "mmol/L")],
        [("calcium", 0.30)],
    ),
    # low calcium explained by low albumin: 9.6 -> 7.2 raw, corrected 7.2 + 1.2 = 8.4 (12.5 %)
    (
        [IRON, PROLIA],
        [ca(9.6, T0 - days(1)), ca(7.2, T0 + days(12)), alb(2.5, T0 + days(12))],
        [],
    ),
    # ionized calcium compares only with ionized: 1.25 -> 0.85 mmol/L is 32 %
    (
        [IRON, PROLIA],
        [
            ca(1.25, T0 - days(1), "mmol/L", "ionized_calcium"),
            ca(0.85, T0 + days(12), "mmol/L", "ionized_calcium"),
        ],
        [("ionized_calcium", 0.32)],
    ),
    # a total-calcium baseline is not a baseline for ionized calcium
    (
        [IRON, PROLIA],
        [ca(9.6, T0 - days(1)), ca(0.85, T0 + days(12), "mmol/L", "ionized_calcium")],
        [],
    ),
    # a unit nobody understands is skipped, never guessed
    ([IRON, PROLIA], [BASE, phos(1.0, T0 + days(10), "furlongs")], []),
    # Reclast given on day 5 inside the window: a fall on day 10 counts
    (
        [IRON, order("Z", "zoledronic_acid_reclast", T0 + days(5), route="IV")],
        [BASE, phos(2.6, T0 + days(10))],
        [("phosphate", 0.35)],
    ),
    # Reclast given on day 12: a fall on day 10 came before it, nothing
    (
        [IRON, order("Z", "zoledronic_acid_reclast", T0 + days(12), route="IV")],
        [BASE, phos(2.6, T0 + days(10))],
        [],
    ),
    # second dose on day 20 extends the window: a fall on day 40 counts, from the first baseline
    (
        [IRON, order("IRON2", FCM, T0 + days(20), route="IV"), PROLIA],
        [BASE, phos(2.6, T0 + days(40))],
        [("phosphate", 0.35)],
    ),
]


@pytest.mark.parametrize(("orders", "results", "expected"), CASES)
def test_trend(
    orders: list[StoredOrder], results: list[StoredResult], expected: list[tuple[str, float]]
) -> None:
    got = trends(orders, results)
    assert [(t.analyte, round(t.drop, 2)) for t in got] == expected
    assert all(t.finding.severity == Severity.WARNING for t in got)


def test_drop_fraction_configurable() -> None:
    # a 20 % threshold catches a 25 % fall the default misses
    results = [BASE, phos(3.0, T0 + days(10))]
    assert trends([IRON, PROLIA], results) == []
    assert [t.analyte for t in trends([IRON, PROLIA], results, drop_fraction=0.20)] == ["phosphate"]


def test_baseline_window_configurable() -> None:
    # a 60-day baseline window accepts a 45-day-old baseline
    results = [phos(4.0, T0 - days(45)), phos(2.6, T0 + days(10))]
    assert trends([IRON, PROLIA], results) == []
    assert len(trends([IRON, PROLIA], results, baseline_days_before=60)) == 1


def test_finding_content() -> None:
    # the worst fall is reported with its baseline, episode, drugs and a stable key
    results = [BASE, phos(2.7, T0 + days(9)), phos(2.5, T0 + days(14)), phos(2.9, T0 + days(16))]
    [t] = trends([IRON, PROLIA], results, now=T0 + days(17))
    f = t.finding
    assert f.rule == RULE_TREND
    assert f.dedup_key == dedup_key(RULE_TREND, PATIENT, "phosphate", T0) == t.dedup_key
    assert f.result.value == 2.5 and f.value_canonical == 2.5
    assert t.baseline == BASE and t.baseline_canonical == 4.0
    assert t.drop == pytest.approx(0.375)
    assert f.days_since_iron == 14 and f.episode_start == T0
    assert f.iron.order_key == "IRON1" and f.antiresorptive.order_key == "DMAB1"
    assert not f.backfilled and not f.double_trouble


def test_backfilled() -> None:
    # a fall processed 8 days after the draw goes to the worklist, like the rule's findings
    [t] = trends([IRON, PROLIA], [BASE, phos(2.6, T0 + days(10))], now=T0 + days(18))
    assert t.finding.backfilled


def test_albumin_corrected_both_sides() -> None:
    # both sides corrected (albumin 3.0): 9.6 -> 10.4 and 6.5 -> 7.3, a 29.8 % fall
    results = [
        ca(9.6, T0 - days(1)),
        alb(3.0, T0 - days(1)),
        ca(6.5, T0 + days(12)),
        alb(3.0, T0 + days(12)),
    ]
    assert trends([IRON, PROLIA], results) == []
    [t] = trends([IRON, PROLIA], results, drop_fraction=0.29)
    assert t.finding.corrected_for_albumin
    assert t.baseline_canonical == pytest.approx(10.4)
    assert t.finding.value_canonical == pytest.approx(7.3)


# -- interaction with the absolute rule ---------------------------------------------------------


def _plans(results: list[StoredResult], previous: dict[str, AlertState]) -> list[tuple[str, str]]:
    now = max(r.observed_at for r in results) + hours(1)
    h = history([IRON, PROLIA], results)
    found = evaluate_patient(h, DRUGS, LABS, CONFIG, now)
    tr = trend_findings(h, DRUGS, LABS, CONFIG, now)
    return [(p.event, p.dedup_key) for p in plan_trend_notifications(previous, tr, found)]


TREND_KEY = dedup_key(RULE_TREND, PATIENT, "phosphate", T0)
OPEN = {TREND_KEY: AlertState(TREND_KEY, Severity.WARNING, 2.8, "open")}


@pytest.mark.parametrize(
    ("results", "previous", "expected"),
    [
        # fall above thresholds, nothing sent yet: the trend alert goes out
        ([BASE, phos(2.8, T0 + days(8))], {}, [("alert", TREND_KEY)]),
        # fall to 1.8 (below "high"): the interaction rule pages; no second message from the trend
        ([BASE, phos(1.8, T0 + days(8))], {}, []),
        # trend sent at 2.8, then 1.8 pages via the rule: the trend is neither updated nor resolved
        ([BASE, phos(2.8, T0 + days(8)), phos(1.8, T0 + days(12))], OPEN, []),
        # the falling result is corrected back to normal: the trend resolves
        ([BASE, phos(3.6, T0 + days(8), status="C")], OPEN, [("resolved", TREND_KEY)]),
    ],
)
def test_plan_with_interaction_findings(
    results: list[StoredResult], previous: dict[str, AlertState], expected: list[tuple[str, str]]
) -> None:
    assert _plans(results, previous) == expected


def test_order_of_results_does_not_matter() -> None:
    # the same results in another order give the same findings
    results = [BASE, phos(2.7, T0 + days(9)), phos(2.5, T0 + days(14)), ca(9.0, T0 - days(1))]
    now = T0 + days(20)
    a = trends([IRON, PROLIA], results, now=now)
    b = trends([PROLIA, IRON], list(reversed(results)), now=now)
    assert a == b and len(a) == 1


def test_total_replaced_by_lab_corrected_calcium_is_no_trend_point() -> None:
    # The uncorrected total of the same draw (7.0) would be a 30 % fall from 10.0; the lab's
    # own corrected calcium of that draw (8.0) replaces it: a 20 % fall, no trend warning.
    results = [
        ca(10.0, T0 - days(1)),
        ca(7.0, T0 + days(12)),
        result("CC-day12", "corrected_calcium", 8.0, T0 + days(12), "mg/dL"),
    ]
    assert trends([IRON, PROLIA], results) == []
    # Without the corrected result the fall of the total is a warning (the test can fail).
    assert [t.analyte for t in trends([IRON, PROLIA], results[:2])] == ["calcium"]
    # With a corrected value that itself fell 30 %, that value is the trend point.
    results[2] = result("CC-day12", "corrected_calcium", 6.9, T0 + days(12), "mg/dL")
    [t] = trends([IRON, PROLIA], results)
    assert t.finding.result.result_key == "CC-day12"
