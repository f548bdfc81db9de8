"""Order messages -> exposures: route filter, cancel, discontinue, hold, administrations."""

from __future__ import annotations

from datetime import datetime

import pytest

from alerts.exposures import derive_exposures
from alerts.model import StoredOrder
from tests.alerts.helpers import CONFIG, DRUGS, T0, days, hours, order

NOW = T0 + days(60)


def spans(orders: list[StoredOrder]) -> list[tuple[str, datetime, datetime]]:
    return [(e.drug, e.start, e.end) for e in derive_exposures(orders, DRUGS, CONFIG, NOW)]


FCM = "ferric_carboxymaltose"
W = days(28)

CASES = [
    # a plain IV iron order opens a 28-day risk window
    ([order("A", FCM, T0, route="IV")], [(FCM, T0, T0 + W)]),
    # route compared upper-case
    ([order("A", FCM, T0, route="ivpb")], [(FCM, T0, T0 + W)]),
    # empty route counts: IV iron products are parenteral-only
    ([order("A", FCM, T0)], [(FCM, T0, T0 + W)]),
    # an iron order given by mouth (mis-coded) gives no exposure
    ([order("A", FCM, T0, route="PO")], []),
    # cancel removes the order entirely
    ([order("A", FCM, T0, route="IV"), order("A", FCM, T0, "CA", sent=T0 + hours(1))], []),
    # cancel after a recorded administration keeps the dose that happened
    (
        [
            order("A", FCM, T0, route="IV"),
            order("A", FCM, T0 + hours(3), route="IV", administered=True),
            order("A", FCM, T0, "CA", sent=T0 + days(1)),
        ],
        [(FCM, T0 + hours(3), T0 + hours(3) + W)],
    ),
    # discontinued before the scheduled dose: the dose never happened
    (
        [
            order("A", FCM, T0 + days(2), route="IV", sent=T0),
            order("A", FCM, T0 + days(2), "DC", sent=T0 + days(1)),
        ],
        [],
    ),
    # discontinued after the dose: the dose stays
    (
        [order("A", FCM, T0, route="IV"), order("A", FCM, T0, "DC", sent=T0 + days(1))],
        [(FCM, T0, T0 + W)],
    ),
    # a hold over the scheduled time drops the dose; RL with a new time restores it
    (
        [
            order("A", FCM, T0 + days(2), route="IV", sent=T0),
            order("A", FCM, T0 + days(2), "HD", sent=T0 + days(1)),
            order("A", FCM, T0 + days(5), "RL", route="IV", sent=T0 + days(4)),
        ],
        [(FCM, T0 + days(5), T0 + days(5) + W)],
    ),
    # held and never released: no dose
    (
        [
            order("A", FCM, T0 + days(2), route="IV", sent=T0),
            order("A", FCM, T0 + days(2), "OH", sent=T0 + days(1)),
        ],
        [],
    ),
    # replace moves the scheduled time
    (
        [
            order("A", FCM, T0, route="IV"),
            order("A", FCM, T0 + days(1), "RP", route="IV", sent=T0 + hours(1)),
        ],
        [(FCM, T0 + days(1), T0 + days(1) + W)],
    ),
    # an administration's time overrides the scheduled time
    (
        [
            order("A", FCM, T0, route="IV"),
            order("A", FCM, T0 + hours(5), route="IV", administered=True),
        ],
        [(FCM, T0 + hours(5), T0 + hours(5) + W)],
    ),
    # Prolia: single dose covers 210 days
    ([order("D", "denosumab_prolia", T0, route="SC")], [("denosumab_prolia", T0, T0 + days(210))]),
    # alendronate active (no end): start to now + 30 days
    ([order("B", "alendronate", T0, route="PO")], [("alendronate", T0, NOW + days(30))]),
    # alendronate discontinued: ends at the DC time + 30
    (
        [
            order("B", "alendronate", T0, route="PO"),
            order("B", "alendronate", T0, "DC", sent=T0 + days(10)),
        ],
        [("alendronate", T0, T0 + days(40))],
    ),
    # alendronate with an end time: end + 30
    (
        [order("B", "alendronate", T0, route="PO", end=T0 + days(5))],
        [("alendronate", T0, T0 + days(35))],
    ),
    # alendronate held and released 40 days later: two intervals, each with its grace
    (
        [
            order("B", "alendronate", T0, route="PO"),
            order("B", "alendronate", T0, "HD", sent=T0 + days(5)),
            order("B", "alendronate", T0, "RL", sent=T0 + days(45)),
        ],
        [("alendronate", T0, T0 + days(35)), ("alendronate", T0 + days(45), NOW + days(30))],
    ),
    # oral bisphosphonate route does not matter (only iron is route-filtered)
    ([order("B", "risedronate", T0, route="PO", end=T0)], [("risedronate", T0, T0 + days(30))]),
    # corrective therapy is an exposure too
    (
        [order("K", "potassium_phosphate", T0, route="IV")],
        [("potassium_phosphate", T0, T0 + days(1))],
    ),
    # a drug the catalog does not know gives nothing
    ([order("Z", "unknown_drug", T0, route="IV")], []),
]


@pytest.mark.parametrize(("orders", "expected"), CASES)
def test_derive_exposures(orders: list[StoredOrder], expected: list[tuple]) -> None:
    assert spans(orders) == expected
    # applying messages depends on message_time, not on input order
    assert spans(list(reversed(orders))) == expected


def test_window_is_configurable() -> None:
    # iron_window_days from the rule config sets the risk window
    from dataclasses import replace

    config = replace(CONFIG, iron_window_days=35)
    [exposure] = derive_exposures([order("A", FCM, T0, route="IV")], DRUGS, config, NOW)
    assert exposure.end == T0 + days(35)


def test_parenteral_routes_configurable() -> None:
    # a hospital may add its own route code (e.g. "IVINF")
    from dataclasses import replace

    config = replace(CONFIG, parenteral_routes=("IVINF",))
    assert derive_exposures([order("A", FCM, T0, route="IVINF")], DRUGS, config, NOW)
    assert not derive_exposures([order("A", FCM, T0, route="IV")], DRUGS, config, NOW)
