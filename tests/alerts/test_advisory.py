"""Order-time advisory: when it exists, once per episode, latest labs, options, lateness."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from alerts.advisory import RULE_ADVISORY, Advisory, advisories, schedule_text
from alerts.dedup import dedup_key
from alerts.model import StoredOrder, StoredResult
from alerts.monitoring import MonitoringConfig
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
RECLAST = order("ZOL1", "zoledronic_acid_reclast", T0 + days(5), route="IV")


def run(
    orders: list[StoredOrder],
    results: list[StoredResult] | None = None,
    now: datetime = T0,
    **kw: object,
) -> list[Advisory]:
    return advisories(history(orders, results or []), DRUGS, LABS, CONFIG, now, **kw)  # type: ignore[arg-type]


# (orders, expected [(iron order, antiresorptive order, trigger_at)])
CASES = [
    # FCM ordered while Prolia (given 30 days earlier) is active
    ([IRON, PROLIA], [("IRON1", "DMAB1", T0)]),
    # Reclast given on day 5 inside the open iron window: triggered by the Reclast
    ([IRON, RECLAST], [("IRON1", "ZOL1", T0 + days(5))]),
    # Reclast on day 29, after the 28-day window closed: no interaction
    ([IRON, replace(RECLAST, dose_at=T0 + days(29), message_time=T0 + days(29))], []),
    # Prolia given 211 days before has expired: no advisory
    ([IRON, order("D", "denosumab_prolia", T0 - days(211))], []),
    # oral iron (route PO on the order) is not IV iron: no advisory
    ([replace(IRON, route="PO"), PROLIA], []),
    # iron without any antiresorptive: no advisory
    ([IRON], []),
    # antiresorptive without iron: no advisory
    ([PROLIA], []),
    # cancelled iron order: no advisory
    ([IRON, order("IRON1", FCM, T0, "CA", sent=T0 + hours(1)), PROLIA], []),
    # two doses in one episode: one advisory, for the first dose
    ([IRON, order("IRON2", FCM, T0 + days(7), route="IV"), PROLIA], [("IRON1", "DMAB1", T0)]),
    # a dose after the window is a new episode: a second advisory
    (
        [IRON, order("IRON2", FCM, T0 + days(40), route="IV"), PROLIA],
        [("IRON1", "DMAB1", T0), ("IRON2", "DMAB1", T0 + days(40))],
    ),
    # first dose before the Prolia, second dose after it: the Prolia (inside dose 1's window)
    # triggers, and the episode gets one advisory
    (
        [
            IRON,
            order("D", "denosumab_prolia", T0 + days(2)),
            order("IRON2", FCM, T0 + days(7), route="IV"),
        ],
        [("IRON1", "D", T0 + days(2))],
    ),
    # ongoing alendronate active at the iron dose counts
    ([IRON, order("B", "alendronate", T0 - days(100), route="PO")], [("IRON1", "B", T0)]),
    # a lower-risk iron (ferric derisomaltose) still gets an advisory
    (
        [order("FDI", "ferric_derisomaltose", T0, route="IV"), PROLIA],
        [("FDI", "DMAB1", T0)],
    ),
]


@pytest.mark.parametrize(("orders", "expected"), CASES)
def test_when_an_advisory_exists(
    orders: list[StoredOrder], expected: list[tuple[str, str, datetime]]
) -> None:
    got = run(orders, now=T0 + days(45))
    assert [(a.iron.order_key, a.antiresorptive.order_key, a.trigger_at) for a in got] == expected


def test_one_key_per_episode() -> None:
    # the key is the episode's, so later doses and re-evaluation never send another
    first = run([IRON, PROLIA])
    later = run([IRON, order("IRON2", FCM, T0 + days(7), route="IV"), PROLIA], now=T0 + days(7))
    assert [a.dedup_key for a in first] == [a.dedup_key for a in later]
    assert first[0].dedup_key == dedup_key(RULE_ADVISORY, PATIENT, "advisory", T0)
    assert first[0].rule == RULE_ADVISORY


def phos(value: float, at: datetime, **kw: str) -> StoredResult:
    return result(f"P-{at.isoformat()}", "phosphate", value, at, **kw)


def ca(value: float, at: datetime, analyte: str = "calcium", unit: str = "mg/dL") -> StoredResult:
    return result(f"C-{at.isoformat()}", analyte, value, at, unit)


# (results, expected (phosphate time or None, calcium time or None))
LAB_CASES = [
    # the latest of two phosphates and the only calcium before the dose
    (
        [phos(3.1, T0 - days(20)), phos(3.4, T0 - days(2)), ca(9.2, T0 - days(10))],
        (T0 - days(2), T0 - days(10)),
    ),
    # nothing in the last 30 days: both None
    ([phos(3.1, T0 - days(31)), ca(9.2, T0 - days(45))], (None, None)),
    # exactly 30 days before counts
    ([phos(3.1, T0 - days(30)), ca(9.2, T0 - days(30))], (T0 - days(30), T0 - days(30))),
    # a result after the iron dose is not a pre-iron value
    ([phos(3.1, T0 + hours(2))], (None, None)),
    # a preliminary phosphate is not shown
    ([phos(3.1, T0 - days(1), status="P")], (None, None)),
    # an ionized calcium newer than the total calcium is the latest calcium
    (
        [ca(9.2, T0 - days(5)), ca(1.15, T0 - days(1), "ionized_calcium", "mmol/L")],
        (None, T0 - days(1)),
    ),
    # a phosphate in a unit nobody understands is not shown
    ([phos(3.1, T0 - days(1), unit="furlongs")], (None, None)),
]


@pytest.mark.parametrize(("results", "expected"), LAB_CASES)
def test_latest_labs(
    results: list[StoredResult], expected: tuple[datetime | None, datetime | None]
) -> None:
    [a] = run([IRON, PROLIA], results)
    got = (
        a.phosphate.observed_at if a.phosphate else None,
        a.calcium.observed_at if a.calcium else None,
    )
    assert got == expected


def test_labs_before_the_triggering_iron_when_antiresorptive_came_later() -> None:
    # Reclast on day 5: the labs shown are those before the iron dose, not after it
    results = [phos(3.3, T0 - days(3)), phos(2.9, T0 + days(4)), ca(9.0, T0 - days(3))]
    [a] = run([IRON, RECLAST], results, now=T0 + days(5))
    assert a.phosphate is not None and a.phosphate.observed_at == T0 - days(3)


def test_lookback_is_configurable() -> None:
    # a 60-day look-back finds a 45-day-old phosphate
    [a] = run([IRON, PROLIA], [phos(3.1, T0 - days(45))], lookback_days=60)
    assert a.phosphate is not None and a.lookback_days == 60


def test_options_for_fcm_without_baseline() -> None:
    # FCM, no labs: draw baseline, consider ferric derisomaltose, plan, inform prescribers
    [a] = run([IRON, PROLIA])
    assert a.iron_risk == "high"
    assert len(a.options) == 4
    assert a.options[0] == (
        "consider drawing baseline phosphate and calcium before the iron dose "
        "(no phosphate or calcium result in the 30 days before it)"
    )
    assert "ferric derisomaltose" in a.options[1] and "PHOSPHARE-IDA" in a.options[1]
    assert "baseline, day 7, day 21, then every 30 days for 3 months" in a.options[2]
    assert "every prescriber" in a.options[3]


def test_options_for_lower_risk_iron_with_baseline() -> None:
    # a lower-risk iron with labs on file: no formulation switch suggested
    fdi = order("FDI", "ferric_derisomaltose", T0, route="IV")
    [a] = run([fdi, PROLIA], [phos(3.1, T0 - days(1)), ca(9.0, T0 - days(1))])
    assert a.iron_risk == "lower"
    assert a.options[0] == "consider checking phosphate and calcium before the iron dose (baseline)"
    assert not any("lower-risk" in o for o in a.options)


def test_only_calcium_missing_is_named() -> None:
    # the baseline option names exactly what is missing
    [a] = run([IRON, PROLIA], [phos(3.1, T0 - days(1))])
    assert "(no calcium result in the 30 days before it)" in a.options[0]


def test_providers() -> None:
    # the advisory goes to the triggering order's provider; every prescriber is listed
    reclast = replace(RECLAST, ordering_provider="DR2")
    [a] = run([IRON, reclast], now=T0 + days(5))
    assert a.trigger_order_key == "ZOL1"
    assert a.ordering_provider == "DR2"
    assert a.prescribers == ("DR1", "DR2")


@pytest.mark.parametrize(
    ("now", "late_days", "late"),
    [
        (T0 - days(2), None, False),  # order arrives 2 days before the scheduled dose: prevention
        (T0 + days(7), None, False),  # exactly 7 days after the dose is not "more than" 7
        (T0 + days(8), None, True),  # 8 days after the dose: worklist, not a message
        (T0 + days(8), 10, False),  # late_days configurable
    ],
)
def test_late(now: datetime, late_days: int | None, late: bool) -> None:
    [a] = run([IRON, PROLIA], now=now, late_days=late_days)
    assert a.late is late


def test_schedule_text_follows_config() -> None:
    # the advice reflects a hospital's own schedule
    text = schedule_text(MonitoringConfig(points_days=(7, 14, 21), monthly_months=1))
    assert text == "baseline, day 7, day 14, day 21, then every 30 days for 1 month"
    assert schedule_text(MonitoringConfig(monthly_months=0)) == "baseline, day 7, day 21"


def test_every_option_reads_as_a_suggestion() -> None:
    # an advisory informs the prescriber's decision: no option may read as an order
    # ("Do: no phosphate in the 30 days..." once read as "give no phosphate")
    [a] = run([IRON, PROLIA])
    assert all(o.startswith("consider ") for o in a.options), a.options
