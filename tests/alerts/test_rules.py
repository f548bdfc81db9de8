"""The interaction rule end to end on plain histories: windows, units, statuses, severity."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.dedup import dedup_key
from alerts.model import (
    RULE_INTERACTION,
    AlertState,
    Finding,
    RuleConfig,
    Severity,
    StoredOrder,
    StoredResult,
)
from alerts.planning import plan_notifications
from alerts.rules import evaluate_patient
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


def evaluate(
    orders: list[StoredOrder],
    results: list[StoredResult],
    now: datetime | None = None,
    config: RuleConfig = CONFIG,
) -> list[Finding]:
    if now is None:
        now = max(r.observed_at for r in results) + hours(1) if results else T0
    return evaluate_patient(history(orders, results), DRUGS, LABS, config, now)


def phos(value: float | None, at: datetime, unit: str = "mg/dL", **kw: str) -> StoredResult:
    return result(f"P-{at.isoformat()}", "phosphate", value, at, unit, **kw)


def ca(value: float, at: datetime, unit: str = "mg/dL", **kw: str) -> StoredResult:
    return result(f"C-{at.isoformat()}", "calcium", value, at, unit, **kw)


def alb(value: float, at: datetime, unit: str = "g/dL") -> StoredResult:
    return result(f"A-{at.isoformat()}", "albumin", value, at, unit)


W21 = replace(CONFIG, iron_window_days=21)
W35 = replace(CONFIG, iron_window_days=35)

# (orders, results, config, expected [(analyte, severity)] )
CASES = [
    # lab exactly 28 days after the iron is inside the default window
    ([IRON, PROLIA], [phos(1.8, T0 + days(28))], CONFIG, [("phosphate", Severity.HIGH)]),
    # lab 29 days after the iron is outside
    ([IRON, PROLIA], [phos(1.8, T0 + days(29))], CONFIG, []),
    # a lab at the moment of the dose is inside (closed interval)
    ([IRON, PROLIA], [phos(1.8, T0)], CONFIG, [("phosphate", Severity.HIGH)]),
    # a lab before the iron dose is not an iron effect
    ([IRON, PROLIA], [phos(1.8, T0 - hours(1))], CONFIG, []),
    # window configured to 21 days: day 22 is outside
    ([IRON, PROLIA], [phos(1.8, T0 + days(22))], W21, []),
    # window configured to 35 days: day 35 is inside
    ([IRON, PROLIA], [phos(1.8, T0 + days(35))], W35, [("phosphate", Severity.HIGH)]),
    # Prolia 211 days before the iron has worn off
    (
        [IRON, order("D", "denosumab_prolia", T0 - days(211))],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [],
    ),
    # Prolia 210 days before the iron still overlaps the dose instant
    (
        [IRON, order("D", "denosumab_prolia", T0 - days(210))],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [("phosphate", Severity.HIGH)],
    ),
    # Xgeva 60 days before has worn off (28 + 28 grace)
    ([IRON, order("D", "denosumab_xgeva", T0 - days(60))], [phos(1.8, T0 + days(10))], CONFIG, []),
    # zoledronic acid (generic -> yearly) 300 days before still counts
    (
        [IRON, order("Z", "zoledronic_acid", T0 - days(300), route="IV")],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [("phosphate", Severity.HIGH)],
    ),
    # antiresorptive given a few days after the iron counts
    (
        [IRON, order("D", "denosumab_prolia", T0 + days(5))],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [("phosphate", Severity.HIGH)],
    ),
    # antiresorptive given after the result does not
    ([IRON, order("D", "denosumab_prolia", T0 + days(12))], [phos(1.8, T0 + days(10))], CONFIG, []),
    # no antiresorptive at all: low phosphate after iron alone is not this rule
    ([IRON], [phos(1.0, T0 + days(10))], CONFIG, []),
    # oral route on an iron order gives no exposure
    ([replace(IRON, route="PO"), PROLIA], [phos(1.8, T0 + days(10))], CONFIG, []),
    # cancelled iron order never fires
    (
        [IRON, order("IRON1", FCM, T0, "CA", sent=T0 + hours(1)), PROLIA],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [],
    ),
    # discontinued before the scheduled dose: no iron
    (
        [
            order("I", FCM, T0 + days(3), route="IV", sent=T0),
            order("I", FCM, T0 + days(3), "DC", sent=T0 + days(1)),
            PROLIA,
        ],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [],
    ),
    # discontinued after the dose: the dose counts
    (
        [IRON, order("IRON1", FCM, T0, "DC", sent=T0 + days(1)), PROLIA],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [("phosphate", Severity.HIGH)],
    ),
    # ongoing alendronate active at the result counts
    (
        [IRON, order("B", "alendronate", T0 - days(100), route="PO")],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [("phosphate", Severity.HIGH)],
    ),
    # alendronate stopped 31 days before the iron has worn off (+30 grace)
    (
        [IRON, order("B", "alendronate", T0 - days(100), route="PO", end=T0 - days(31))],
        [phos(1.8, T0 + days(10))],
        CONFIG,
        [],
    ),
    # SI units: 0.5 mmol/L phosphate = 1.55 mg/dL -> high
    ([IRON, PROLIA], [phos(0.5, T0 + days(10), "mmol/L")], CONFIG, [("phosphate", Severity.HIGH)]),
    # SN "<0.5" means at most 0.5 mg/dL -> critical
    (
        [IRON, PROLIA],
        [phos(0.5, T0 + days(10), comparator="<")],
        CONFIG,
        [("phosphate", Severity.CRITICAL)],
    ),
    # SN ">0.5" never counts as low
    ([IRON, PROLIA], [phos(0.5, T0 + days(10), comparator=">")], CONFIG, []),
    # preliminary result never alerts
    ([IRON, PROLIA], [phos(0.5, T0 + days(10), status="P")], CONFIG, []),
    # corrected result alerts
    (
        [IRON, PROLIA],
        [phos(1.8, T0 + days(10), status="C")],
        CONFIG,
        [("phosphate", Severity.HIGH)],
    ),
    # "changed to final" alerts
    (
        [IRON, PROLIA],
        [phos(1.8, T0 + days(10), status="U")],
        CONFIG,
        [("phosphate", Severity.HIGH)],
    ),
    # non-numeric result is skipped
    ([IRON, PROLIA], [phos(None, T0 + days(10))], CONFIG, []),
    # unit nobody understands is skipped here (the service dead-letters it)
    ([IRON, PROLIA], [phos(0.5, T0 + days(10), "furlongs")], CONFIG, []),
    # at the warning threshold is not below it
    ([IRON, PROLIA], [phos(2.5, T0 + days(10))], CONFIG, []),
    # just below warning
    ([IRON, PROLIA], [phos(2.4, T0 + days(10))], CONFIG, [("phosphate", Severity.WARNING)]),
    # below critical
    ([IRON, PROLIA], [phos(0.9, T0 + days(10))], CONFIG, [("phosphate", Severity.CRITICAL)]),
    # ionized calcium in mmol/L has its own thresholds
    (
        [IRON, PROLIA],
        [result("I1", "ionized_calcium", 0.95, T0 + days(10), "mmol/L")],
        CONFIG,
        [("ionized_calcium", Severity.HIGH)],
    ),
    # lab-reported corrected calcium counts as calcium (2.0 mmol/L = 8.016 mg/dL)
    (
        [IRON, PROLIA],
        [result("CC", "corrected_calcium", 2.0, T0 + days(10), "mmol/L")],
        CONFIG,
        [("calcium", Severity.WARNING)],
    ),
    # low total calcium explained by low albumin (within 48 h) does not alert: 8.2 -> 9.4
    ([IRON, PROLIA], [ca(8.2, T0 + days(10)), alb(2.5, T0 + days(10) + hours(2))], CONFIG, []),
    # albumin in g/L is converted before correcting
    ([IRON, PROLIA], [ca(8.2, T0 + days(10)), alb(25, T0 + days(10), "g/L")], CONFIG, []),
    # albumin 50 h away is not paired: uncorrected 8.2 is a warning
    (
        [IRON, PROLIA],
        [ca(8.2, T0 + days(10)), alb(2.5, T0 + days(10) + hours(50))],
        CONFIG,
        [("calcium", Severity.WARNING)],
    ),
    # high albumin lowers the corrected value: 8.2 - 0.4 = 7.8 -> high
    (
        [IRON, PROLIA],
        [ca(8.2, T0 + days(10)), alb(4.5, T0 + days(10) - hours(47))],
        CONFIG,
        [("calcium", Severity.HIGH)],
    ),
    # a preliminary albumin is not used for correction
    (
        [IRON, PROLIA],
        [ca(8.2, T0 + days(10)), result("A", "albumin", 2.5, T0 + days(10), "g/dL", status="P")],
        CONFIG,
        [("calcium", Severity.WARNING)],
    ),
]


@pytest.mark.parametrize(("orders", "results", "config", "expected"), CASES)
def test_rule(
    orders: list[StoredOrder],
    results: list[StoredResult],
    config: RuleConfig,
    expected: list[tuple[str, Severity]],
) -> None:
    findings = evaluate(orders, results, config=config)
    assert [(f.analyte, f.severity) for f in findings] == expected


def test_finding_content() -> None:
    # the finding carries the worst result, the drugs and a stable key
    results = [phos(2.3, T0 + days(8)), phos(1.5, T0 + days(12)), phos(2.0, T0 + days(14))]
    [f] = evaluate([IRON, PROLIA], results, now=T0 + days(15))
    assert f.rule == RULE_INTERACTION
    assert f.patient_id == PATIENT
    assert f.result.value == 1.5
    assert f.value_canonical == 1.5
    assert f.severity == Severity.HIGH
    assert f.iron.drug == FCM and f.iron.start == T0
    assert f.antiresorptive.drug == "denosumab_prolia"
    assert f.days_since_iron == 12
    assert f.episode_start == T0
    assert f.dedup_key == dedup_key(RULE_INTERACTION, PATIENT, "phosphate", T0)
    assert not f.backfilled and not f.double_trouble and not f.corrected_for_albumin


def test_corrected_flag() -> None:
    # albumin correction is reported, with the corrected value
    [f] = evaluate([IRON, PROLIA], [ca(7.5, T0 + days(9)), alb(3.5, T0 + days(9))])
    assert f.corrected_for_albumin
    assert f.value_canonical == pytest.approx(7.9)


def test_second_dose_extends_the_episode() -> None:
    # a second dose inside the first window keeps the episode (and the dedup key) of the first
    second = order("IRON2", FCM, T0 + days(20), route="IV")
    [f] = evaluate([IRON, second, PROLIA], [phos(1.8, T0 + days(40))])
    assert f.episode_start == T0
    assert f.iron.order_key == "IRON2"
    assert f.days_since_iron == 20
    assert f.dedup_key == dedup_key(RULE_INTERACTION, PATIENT, "phosphate", T0)


def test_dose_after_the_window_starts_a_new_episode() -> None:
    # a dose after the first window closed is a new episode with its own key
    second = order("IRON2", FCM, T0 + days(30), route="IV")
    findings = evaluate(
        [IRON, second, PROLIA], [phos(1.8, T0 + days(10)), phos(1.8, T0 + days(40))]
    )
    assert sorted(f.episode_start for f in findings) == [T0, T0 + days(30)]
    assert len({f.dedup_key for f in findings}) == 2


def test_key_is_stable_as_results_arrive() -> None:
    # a later, worse result of the same episode keeps the alert's key
    first = evaluate([IRON, PROLIA], [phos(2.3, T0 + days(7))])
    later = evaluate([IRON, PROLIA], [phos(2.3, T0 + days(7)), phos(1.2, T0 + days(14))])
    assert [f.dedup_key for f in first] == [f.dedup_key for f in later]


@pytest.mark.parametrize(
    ("p", "c", "gap_hours", "expected"),
    [
        # both warnings within 72 h: each raised to high
        (2.3, 8.3, 24, [("calcium", Severity.HIGH, True), ("phosphate", Severity.HIGH, True)]),
        # exactly 72 h apart still counts
        (2.3, 8.3, 72, [("calcium", Severity.HIGH, True), ("phosphate", Severity.HIGH, True)]),
        # 73 h apart: no raise
        (
            2.3,
            8.3,
            73,
            [("calcium", Severity.WARNING, False), ("phosphate", Severity.WARNING, False)],
        ),
        # critical stays critical
        (0.8, 8.3, 1, [("calcium", Severity.HIGH, True), ("phosphate", Severity.CRITICAL, True)]),
    ],
)
def test_double_trouble(p: float, c: float, gap_hours: int, expected: list) -> None:
    results = [phos(p, T0 + days(10)), ca(c, T0 + days(10) + hours(gap_hours))]
    findings = evaluate([IRON, PROLIA], results)
    got = sorted((f.analyte, f.severity, f.double_trouble) for f in findings)
    assert got == expected


def test_double_trouble_with_ionized_calcium() -> None:
    # ionized calcium pairs with phosphate too
    results = [
        phos(2.3, T0 + days(10)),
        result("I", "ionized_calcium", 1.1, T0 + days(11), "mmol/L"),
    ]
    findings = evaluate([IRON, PROLIA], results)
    assert {(f.analyte, f.severity) for f in findings} == {
        ("phosphate", Severity.HIGH),
        ("ionized_calcium", Severity.HIGH),
    }


@pytest.mark.parametrize(
    ("age_days", "backfilled"),
    [
        (6, False),  # processed within a week: pages
        (7, False),  # exactly 7 days is not "older than" 7 days
        (8, True),  # older than 7 days when processed: worklist
    ],
)
def test_backfilled(age_days: int, backfilled: bool) -> None:
    at = T0 + days(10)
    [f] = evaluate([IRON, PROLIA], [phos(1.8, at)], now=at + days(age_days))
    assert f.backfilled is backfilled


def test_corrected_result_no_longer_low_resolves() -> None:
    # a correction that brings the value back to normal removes the finding -> "resolved"
    at = T0 + days(10)
    [f] = evaluate([IRON, PROLIA], [phos(1.8, at)])
    stored = {f.dedup_key: AlertState(f.dedup_key, f.severity, f.value_canonical, "open")}
    after = evaluate([IRON, PROLIA], [replace(phos(3.1, at), status="C")])
    assert after == []
    assert [(p.event, p.finding) for p in plan_notifications(stored, after)] == [("resolved", None)]


def test_late_arriving_order_is_checked_against_stored_results() -> None:
    # the Prolia order stored after the lab: same history -> same finding
    at = T0 + days(10)
    late_prolia = replace(PROLIA, message_time=at + days(2))
    findings = evaluate([IRON, late_prolia], [phos(1.8, at)], now=at + days(2))
    assert [(f.analyte, f.severity) for f in findings] == [("phosphate", Severity.HIGH)]


def test_default_thresholds_when_config_has_none() -> None:
    # an empty thresholds dict falls back to CLINICAL.md defaults instead of never alerting
    findings = evaluate([IRON, PROLIA], [phos(1.8, T0 + days(5))], config=RuleConfig())
    assert [(f.analyte, f.severity) for f in findings] == [("phosphate", Severity.HIGH)]


HISTORY_ORDERS = [
    IRON,
    order("IRON2", FCM, T0 + days(20), route="IV"),
    order("IRON2", FCM, T0 + days(20), "XO", route="IV", sent=T0 + days(1)),
    PROLIA,
    order("B", "alendronate", T0 - days(90), route="PO"),
    order("B", "alendronate", T0, "DC", sent=T0 + days(3)),
    order("X", "iron_sucrose", T0 + days(2), route="IV"),
    order("X", "iron_sucrose", T0 + days(2), "CA", sent=T0 + days(1)),
]
HISTORY_RESULTS = [
    phos(2.3, T0 + days(7)),
    phos(1.4, T0 + days(14)),
    ca(8.1, T0 + days(14) + hours(3)),
    alb(3.9, T0 + days(14)),
    result("I", "ionized_calcium", 1.05, T0 + days(30), "mmol/L"),
    phos(0.4, T0 + days(31), status="P"),
    phos(2.0, T0 + days(44), "mg/dl", comparator="<"),
]


@settings(max_examples=60, deadline=None)
@given(
    orders=st.permutations(HISTORY_ORDERS),
    results=st.permutations(HISTORY_RESULTS),
)
def test_order_independence(orders: list[StoredOrder], results: list[StoredResult]) -> None:
    # feeds arrive in any order: the same stored history gives the same findings
    now = T0 + days(50)
    reference = evaluate(HISTORY_ORDERS, HISTORY_RESULTS, now=now)
    assert reference  # the scenario must actually fire
    assert evaluate(list(orders), list(results), now=now) == reference


@settings(max_examples=100, deadline=None)
@given(
    dose_offset=st.integers(min_value=-40, max_value=40),
    lab_day=st.integers(min_value=-5, max_value=40),
    window=st.integers(min_value=21, max_value=35),
)
def test_window_property(dose_offset: int, lab_day: int, window: int) -> None:
    # fires iff the lab is within [iron, iron + window] and Prolia overlaps [iron, lab]
    config = replace(CONFIG, iron_window_days=window)
    prolia = order("D", "denosumab_prolia", T0 + days(dose_offset))
    at = T0 + days(lab_day)
    fired = bool(evaluate([IRON, prolia], [phos(1.8, at)], config=config))
    in_window = 0 <= lab_day <= window
    overlaps = dose_offset <= lab_day and dose_offset + 210 >= 0
    assert fired == (in_window and overlaps)
