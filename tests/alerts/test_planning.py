"""plan_notifications: what to tell people, as a table of previous state x finding now."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerts.exposures import derive_exposures
from alerts.model import RULE_INTERACTION, AlertState, Finding, Severity
from alerts.planning import plan_notifications
from tests.alerts.helpers import CONFIG, DRUGS, IRON, PATIENT, PROLIA, T0, days, result

_EXPOSURES = derive_exposures([IRON, PROLIA], DRUGS, CONFIG, T0 + days(20))


def finding(
    key: str = "k1",
    severity: Severity = Severity.HIGH,
    value: float = 1.8,
    backfilled: bool = False,
) -> Finding:
    iron = next(e for e in _EXPOSURES if e.drug_class == "iv_iron")
    anti = next(e for e in _EXPOSURES if e.drug_class == "antiresorptive")
    return Finding(
        rule=RULE_INTERACTION,
        dedup_key=key,
        patient_id=PATIENT,
        analyte="phosphate",
        severity=severity,
        result=result("R1", "phosphate", value, T0 + days(10)),
        value_canonical=value,
        corrected_for_albumin=False,
        iron=iron,
        episode_start=T0,
        days_since_iron=10,
        antiresorptive=anti,
        backfilled=backfilled,
    )


def state(status: str, severity: Severity = Severity.HIGH, value: float = 1.8) -> AlertState:
    return AlertState("k1", severity, value, status)


CASES = [
    # new alert
    (None, finding(), "alert"),
    # new but backfilled: still "alert"; the service routes it to the worklist
    (None, finding(backfilled=True), "alert"),
    # open, value got worse
    (state("open"), finding(value=1.5), "update"),
    # open, severity rose (warning notified, now pages)
    (state("open", Severity.WARNING, 2.1), finding(severity=Severity.HIGH, value=2.1), "update"),
    # open, same severity and value: nothing
    (state("open"), finding(), None),
    # open, float noise from unit conversion is not a worse value
    (state("open", value=1.8), finding(value=1.8 - 1e-12), None),
    # open, better value: nothing (resolution is by absence, not improvement)
    (state("open"), finding(value=2.2, severity=Severity.WARNING), None),
    # worklist item gets a fresh (not backfilled) result: it pages now
    (state("worklist"), finding(backfilled=False), "alert"),
    # worklist item still only backfilled results: nothing
    (state("worklist"), finding(backfilled=True, value=1.0), None),
    # resolved alert comes back
    (state("resolved"), finding(), "alert"),
    # open alert no longer supported by any finding
    (state("open"), None, "resolved"),
    # worklist item no longer supported
    (state("worklist"), None, "resolved"),
    # already resolved and still absent: nothing
    (state("resolved"), None, None),
    # unknown status (e.g. acknowledged) behaves as open
    (state("acknowledged"), finding(value=1.0), "update"),
]


@pytest.mark.parametrize(("previous", "current", "event"), CASES)
def test_plan(previous: AlertState | None, current: Finding | None, event: str | None) -> None:
    prev = {} if previous is None else {previous.dedup_key: previous}
    plans = plan_notifications(prev, [] if current is None else [current])
    if event is None:
        assert plans == []
        return
    [plan] = plans
    assert plan.event == event
    assert plan.dedup_key == "k1"
    assert plan.finding is current


def test_plans_are_sorted_and_complete() -> None:
    # several alerts at once come out in dedup-key order, one plan each
    previous = {
        "b": replace(state("open"), dedup_key="b"),
        "c": replace(state("open"), dedup_key="c"),
    }
    findings = [finding("c", value=1.0), finding("a")]
    plans = plan_notifications(previous, findings)
    assert [(p.dedup_key, p.event) for p in plans] == [
        ("a", "alert"),
        ("b", "resolved"),
        ("c", "update"),
    ]
