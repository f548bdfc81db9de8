"""CLINICAL.md "Edge semantics", one behaviour per test: every dose counts, strict
comparators, per-result backfill, lab-corrected calcium, RXA-20, oral bisphosphonates."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from alerts.exposures import derive_exposures
from alerts.model import Finding, RuleConfig, StoredOrder, StoredResult, Thresholds
from alerts.readings import DEFAULT_THRESHOLDS
from alerts.rules import evaluate_patient
from tests.alerts.helpers import (
    CONFIG,
    DRUGS,
    IRON,
    LABS,
    PROLIA,
    T0,
    days,
    history,
    hours,
    order,
    result,
)

FCM = "ferric_carboxymaltose"


def evaluate(
    orders: list[StoredOrder],
    results: list[StoredResult],
    now: datetime | None = None,
    config: RuleConfig = CONFIG,
) -> list[Finding]:
    if now is None:
        now = max(r.observed_at for r in results) + hours(1)
    return evaluate_patient(history(orders, results), DRUGS, LABS, config, now)


def graded(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.analyte, f.severity.label) for f in findings]


def phos(value: float, day: float, unit: str = "mg/dL", cmp: str = "") -> StoredResult:
    return result(f"P{day}", "phosphate", value, T0 + days(day), unit, comparator=cmp)


# -- every dose counts ---------------------------------------------------------------------

# Prolia given 195 days before the first iron wears off on day 15, before the second dose.
WORN_OFF_PROLIA = order("D", "denosumab_prolia", T0 - days(195), route="SC")
SECOND = order("IRON2", FCM, T0 + days(20), route="IV")


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        # the first dose alone pages
        ([IRON, WORN_OFF_PROLIA], [("phosphate", "high")]),
        # a second dose whose own window has no antiresorptive must not remove that page
        ([IRON, SECOND, WORN_OFF_PROLIA], [("phosphate", "high")]),
        # the second dose alone would not page
        ([SECOND, WORN_OFF_PROLIA], []),
    ],
)
def test_second_iron_dose_keeps_first_doses_page(
    orders: list[StoredOrder], expected: list[tuple[str, str]]
) -> None:
    assert graded(evaluate(orders, [phos(1.8, 25)])) == expected


def test_finding_names_the_latest_qualifying_dose() -> None:
    # the page's iron and days-since come from the dose that qualifies, the key from the episode
    [f] = evaluate([IRON, SECOND, WORN_OFF_PROLIA], [phos(1.8, 25)])
    assert f.iron.order_key == "IRON1" and f.days_since_iron == 25 and f.episode_start == T0
    [g] = evaluate([IRON, SECOND, PROLIA], [phos(1.8, 25)])
    assert g.iron.order_key == "IRON2" and g.days_since_iron == 5 and g.dedup_key == f.dedup_key


# -- strict comparators ----------------------------------------------------------------------

MMOL = {
    "phosphate": Thresholds("mmol/L", warning=0.81, high=0.65, critical=0.32),
    "calcium": DEFAULT_THRESHOLDS["calcium"],
    "ionized_calcium": DEFAULT_THRESHOLDS["ionized_calcium"],
}
MMOL_CONFIG = replace(CONFIG, thresholds=MMOL)


@pytest.mark.parametrize(
    ("value", "unit", "cmp", "config", "expected"),
    [
        # "<1.0" is strictly below 1.0: critical
        (1.0, "mg/dL", "<", CONFIG, "critical"),
        # a plain 1.0 is not below 1.0: high
        (1.0, "mg/dL", "", CONFIG, "high"),
        # "<=1.0" may be 1.0: high, as a plain 1.0
        (1.0, "mg/dL", "<=", CONFIG, "high"),
        # "<2.0" is strictly below 2.0: high (it did not page at all before)
        (2.0, "mg/dL", "<", CONFIG, "high"),
        # "<2.5" is strictly below the warning threshold
        (2.5, "mg/dL", "<", CONFIG, "warning"),
        # "<2.6" says nothing about being below 2.5
        (2.6, "mg/dL", "<", CONFIG, None),
        # ">0.5" never qualifies as low
        (0.5, "mg/dL", ">", CONFIG, None),
        # ">=0.5" neither
        (0.5, "mg/dL", ">=", CONFIG, None),
        # "<0.65 mmol/L" is below 2.01305 mg/dL, not below 2.0: a warning, not high
        (0.65, "mmol/L", "<", CONFIG, "warning"),
        # "<0.32 mmol/L" is below 0.99104 mg/dL: critical
        (0.32, "mmol/L", "<", CONFIG, "critical"),
        # plain 0.32 mmol/L = 0.99104 mg/dL is below 1.0: critical too
        (0.32, "mmol/L", "", CONFIG, "critical"),
        # thresholds configured in mmol/L: "<0.65 mmol/L" meets 0.65 exactly (no float noise)
        (0.65, "mmol/L", "<", MMOL_CONFIG, "high"),
        # ... and a plain 0.65 mmol/L is not below 0.65 mmol/L
        (0.65, "mmol/L", "", MMOL_CONFIG, "warning"),
        # "<0.32 mmol/L" with the critical threshold 0.32 mmol/L: critical
        (0.32, "mmol/L", "<", MMOL_CONFIG, "critical"),
        # a mg/dL result against mmol/L thresholds: 2.0 mg/dL < 0.65 mmol/L (2.01305 mg/dL)
        (2.0, "mg/dL", "", MMOL_CONFIG, "high"),
    ],
)
def test_less_than_one_phosphate_is_critical(
    value: float, unit: str, cmp: str, config: RuleConfig, expected: str | None
) -> None:
    findings = evaluate([IRON, PROLIA], [phos(value, 5, unit, cmp)], config=config)
    assert graded(findings) == ([("phosphate", expected)] if expected else [])


@pytest.mark.parametrize(
    ("calcium", "cmp", "albumin", "expected"),
    [
        # "<7.6" with albumin 3.5 corrects to "<8.0": strictly below 8.0 -> high
        (7.6, "<", 3.5, "high"),
        # plain 7.6 with albumin 3.5 corrects to 8.0, not below 8.0 -> warning
        (7.6, "", 3.5, "warning"),
        # "<6.2" with albumin 3.0 corrects to "<7.0": strictly below 7.0 -> critical
        (6.2, "<", 3.0, "critical"),
    ],
)
def test_strict_comparator_survives_albumin_correction(
    calcium: float, cmp: str, albumin: float, expected: str
) -> None:
    at = T0 + days(5)
    results = [
        result("C", "calcium", calcium, at, comparator=cmp),
        result("A", "albumin", albumin, at, "g/dL"),
    ]
    assert graded(evaluate([IRON, PROLIA], results)) == [("calcium", expected)]


# -- per-result backfill ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "now_day", "expected"),
    [
        # a stale high and a fresh warning: the fresh one pages as a warning finding
        ([phos(1.5, 2), phos(2.3, 14)], 15, ("warning", False)),
        # a stale warning and a fresh high: the fresh high pages
        ([phos(2.3, 2), phos(1.5, 14)], 15, ("high", False)),
        # only stale results: the worklist, with the worst severity
        ([phos(1.5, 2), phos(2.3, 5)], 15, ("high", True)),
        # exactly 7 days old is still fresh
        ([phos(1.5, 2), phos(2.3, 8)], 15, ("warning", False)),
    ],
)
def test_stale_and_fresh_results_fresh_one_pages(
    results: list[StoredResult], now_day: int, expected: tuple[str, bool]
) -> None:
    [f] = evaluate([IRON, PROLIA], results, now=T0 + days(now_day))
    assert (f.severity.label, f.backfilled) == expected


def test_fresh_finding_raised_by_a_stale_partner() -> None:
    # both minerals low within 72 h counts even when the partner arrived too late to page
    results = [phos(2.3, 10), result("C", "calcium", 8.3, T0 + days(8) + hours(1))]
    findings = evaluate([IRON, PROLIA], results, now=T0 + days(16))
    assert {(f.analyte, f.severity.label, f.backfilled) for f in findings} == {
        ("phosphate", "high", False),
        ("calcium", "high", True),
    }


def test_double_trouble_raises_only_the_result_with_a_partner() -> None:
    # an unpaired high and a paired warning (-> high) are high, not critical
    results = [phos(1.5, 10), phos(2.3, 20), result("C", "calcium", 8.3, T0 + days(20))]
    found = {(f.analyte, f.severity.label) for f in evaluate([IRON, PROLIA], results)}
    assert found == {("phosphate", "high"), ("calcium", "high")}


# -- lab-reported corrected calcium ------------------------------------------------------------


def _ca(key: str, analyte: str, value: float, hour: float, specimen: str, unit: str = "mg/dL"):
    return result(key, analyte, value, T0 + days(5) + hours(hour), unit, specimen=specimen)


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        # the lab's corrected 8.6 replaces the total 7.5 of the same OBR: no calcium finding
        ([_ca("C", "calcium", 7.5, 0, "S1"), _ca("K", "corrected_calcium", 8.6, 1, "S1")], []),
        # same collection time, no specimen id: replaced too
        ([_ca("C", "calcium", 7.5, 0, ""), _ca("K", "corrected_calcium", 8.6, 0, "")], []),
        # the corrected value itself pages when low (2.0 mmol/L = 8.016 mg/dL: warning)
        (
            [
                _ca("C", "calcium", 9.0, 0, "S1"),
                _ca("K", "corrected_calcium", 2.0, 0, "S1", "mmol/L"),
            ],
            [("calcium", "warning")],
        ),
        # a total from another specimen at another time is still its own result
        (
            [_ca("C", "calcium", 7.5, 0, "S2"), _ca("K", "corrected_calcium", 8.6, 5, "S1")],
            [("calcium", "high")],
        ),
        # a retracted corrected calcium replaces nothing: the total counts again
        (
            [
                _ca("C", "calcium", 7.5, 0, "S1"),
                replace(_ca("K", "corrected_calcium", 8.6, 0, "S1"), status="D"),
            ],
            [("calcium", "high")],
        ),
    ],
)
def test_lab_corrected_calcium_replaces_total_of_same_specimen(
    results: list[StoredResult], expected: list[tuple[str, str]]
) -> None:
    assert graded(evaluate([IRON, PROLIA], results)) == expected


def test_replaced_total_is_no_double_trouble_partner() -> None:
    # a low total next to a normal lab-corrected value must not raise the phosphate
    results = [
        _ca("C", "calcium", 7.5, 0, "S1"),
        _ca("K", "corrected_calcium", 8.6, 0, "S1"),
        phos(2.3, 5),
    ]
    assert graded(evaluate([IRON, PROLIA], results)) == [("phosphate", "warning")]


# -- RXA-20 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "opens"),
    [
        ("CP", True),  # complete: a dose that happened
        ("PA", True),  # partially administered: still a dose
        ("", True),  # no RXA-20: an administration message is a dose
        ("NA", False),  # not administered: no window
        ("RE", False),  # refused: no window
        ("na", False),  # compared case-insensitively
    ],
)
def test_not_administered_rxa_opens_no_window(status: str, opens: bool) -> None:
    given = order("RAS1", FCM, T0, "RE", route="IV", administered=True, completion_status=status)
    spans = derive_exposures([given], DRUGS, CONFIG, T0 + days(30))
    assert bool(spans) is opens
    assert bool(evaluate([given, PROLIA], [phos(1.8, 5)])) is opens


def test_refused_antiresorptive_opens_no_effect_interval() -> None:
    # a refused Prolia injection protects nothing, so it triggers nothing
    refused = order(
        key="D",
        drug="denosumab_prolia",
        at=T0 - days(3),
        control="RE",
        route="SC",
        administered=True,
        completion_status="RE",
    )
    assert evaluate([IRON, refused], [phos(1.8, 5)]) == []


# -- oral bisphosphonates ----------------------------------------------------------------------

NOW = T0 + days(300)


def intervals(orders: list[StoredOrder]) -> list[tuple[datetime, datetime]]:
    return [(e.start, e.end) for e in derive_exposures(orders, DRUGS, CONFIG, NOW)]


START = T0 - days(200)
STOP = T0 - days(100)


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        # alendronate discontinued: counts until 30 days after the stop
        (
            [
                order("B", "alendronate", START, route="PO"),
                order("B", "alendronate", START, "DC", sent=STOP),
            ],
            [(START, STOP + days(30))],
        ),
        # oral ibandronate discontinued: 30 days too, not the IV form's 3 months
        (
            [
                order("B", "ibandronate", START, route="PO"),
                order("B", "ibandronate", START, "DC", sent=STOP),
            ],
            [(START, STOP + days(30))],
        ),
        # oral ibandronate with an end date: end + 30 days
        (
            [order("B", "ibandronate", START, route="PO", end=STOP)],
            [(START, STOP + days(30))],
        ),
        # oral ibandronate still active: until now + 30 days
        ([order("B", "ibandronate", START, route="PO")], [(START, NOW + days(30))]),
        # IV ibandronate: one dose protects 3 months, whatever happens to the order later
        (
            [
                order("B", "ibandronate", START, route="IV"),
                order("B", "ibandronate", START, "DC", sent=START + days(1)),
            ],
            [(START, START + days(90))],
        ),
        # ibandronate without a route: both forms (the union) - a missed patient is worse
        (
            [order("B", "ibandronate", START, end=STOP)],
            [(START, START + days(90)), (START, STOP + days(30))],
        ),
        # an oral administration (RAS) of ibandronate counts 30 days
        (
            [order("B", "ibandronate", START, "RE", route="PO", administered=True)],
            [(START, START + days(30))],
        ),
    ],
)
def test_discontinued_oral_bisphosphonate_stops_after_30_days(
    orders: list[StoredOrder], expected: list[tuple[datetime, datetime]]
) -> None:
    assert sorted(intervals(orders)) == sorted(expected)


def test_discontinued_oral_ibandronate_does_not_page_months_later() -> None:
    # stopped 40 days before the iron: worn off (it used to count for 90 days)
    orders = [
        IRON,
        order("B", "ibandronate", T0 - days(300), route="PO"),
        order("B", "ibandronate", T0 - days(300), "DC", sent=T0 - days(40)),
    ]
    assert evaluate(orders, [phos(1.8, 5)]) == []
