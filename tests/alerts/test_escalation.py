"""Corrective therapy and escalation (CLINICAL.md "Edge semantics"): only a new order of a
configured kind and route, placed after the alert, stops escalation; a refill of a standing
oral supplement is noted instead."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerts.escalation import DEFAULT_ROUTES, CorrectiveConfig, TherapyMessage, corrective_stops
from alerts.routing import load_routing
from tests.alerts.helpers import CONFIGS

ALERT = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
SHIPPED = CorrectiveConfig.from_routing(
    {
        k: tuple(v)
        for k, v in tomllib.loads((CONFIGS / "routing.toml").read_text("utf-8"))[
            "corrective"
        ].items()
    }
)


def m(minutes: float) -> datetime:
    return ALERT + timedelta(minutes=minutes)


def msg(
    drug: str,
    control: str,
    sent: float,
    *,
    route: str = "IV",
    key: str = "O1",
    administered: bool = False,
    status: str = "",
    dose: float | None = None,
) -> TherapyMessage:
    return TherapyMessage(
        order_key=key,
        drug=drug,
        route=route,
        order_control=control,
        dose_at=m(sent if dose is None else dose),
        message_time=m(sent),
        administered=administered,
        completion_status=status,
    )


KPHOS, CAGLU, CACO3, CALCITRIOL = (
    "potassium_phosphate",
    "calcium_gluconate",
    "calcium_carbonate",
    "calcitriol",
)
ORAL_CALCIUM = [msg(CACO3, "NW", -60 * 24 * 30, route="PO", key="STANDING")]


@pytest.mark.parametrize(
    ("analyte", "messages", "stops"),
    [
        # a refill (RP) of a standing oral calcium carbonate after a calcium alert never stops
        ("calcium", [*ORAL_CALCIUM, msg(CACO3, "RP", 5, route="PO", key="STANDING")], False),
        # a renewal (RQ / XO / XX), status (SC) or release (RL) of it neither
        ("calcium", [*ORAL_CALCIUM, msg(CACO3, "XO", 5, route="PO", key="STANDING")], False),
        ("calcium", [*ORAL_CALCIUM, msg(CACO3, "SC", 5, route="PO", key="STANDING")], False),
        ("calcium", [*ORAL_CALCIUM, msg(CACO3, "RL", 5, route="PO", key="STANDING")], False),
        # even a re-sent NW of the standing order is not a new order
        ("calcium", [*ORAL_CALCIUM, msg(CACO3, "NW", 5, route="PO", key="STANDING")], False),
        # a standing calcitriol refill on a critical calcium page neither
        ("calcium", [msg(CALCITRIOL, "RP", 5, route="PO", key="CT")], False),
        # a brand-new oral calcium carbonate order is not IV calcium
        ("calcium", [msg(CACO3, "NW", 5, route="PO", key="NEW")], False),
    ],
)
def test_refill_of_standing_oral_calcium_does_not_stop_escalation(
    analyte: str, messages: list[TherapyMessage], stops: bool
) -> None:
    check = corrective_stops(analyte, ALERT, messages, SHIPPED)
    assert (check.stop is not None) is stops
    assert check.noted  # the page is noted with it instead


@pytest.mark.parametrize(
    ("analyte", "messages", "expected"),
    [
        # a new IV phosphate order after a phosphate alert stops escalation
        ("phosphate", [msg(KPHOS, "NW", 5)], (KPHOS, m(5))),
        # ... with any configured IV spelling, compared upper-case
        ("phosphate", [msg(KPHOS, "NW", 5, route="ivpb")], (KPHOS, m(5))),
        # ordered before the alert: not a reaction to it
        ("phosphate", [msg(KPHOS, "NW", -1)], None),
        # IV calcium does not correct phosphate
        ("phosphate", [msg(CAGLU, "NW", 5)], None),
        # IV calcium gluconate stops a calcium alert, and an ionized calcium alert
        ("calcium", [msg(CAGLU, "NW", 5)], (CAGLU, m(5))),
        ("ionized_calcium", [msg(CAGLU, "NW", 5)], (CAGLU, m(5))),
        # oral potassium phosphate is not IV replacement
        ("phosphate", [msg(KPHOS, "NW", 5, route="PO")], None),
        # no route: not known to be IV, so escalation goes on (the safe direction)
        ("phosphate", [msg(KPHOS, "NW", 5, route="")], None),
        # a discontinue or cancel after the alert is no therapy
        ("phosphate", [msg(KPHOS, "DC", 5)], None),
        ("phosphate", [msg(KPHOS, "CA", 5)], None),
        # an IV administration (RAS) after the alert stops, by its dose time
        ("phosphate", [msg(KPHOS, "RE", 9, administered=True, dose=7)], (KPHOS, m(7))),
        # ... even of an order placed before the alert: the dose is given after it
        (
            "phosphate",
            [msg(KPHOS, "NW", -30), msg(KPHOS, "RE", 9, administered=True, dose=7)],
            (KPHOS, m(7)),
        ),
        # an administration not given (NA) or refused (RE) stops nothing
        ("phosphate", [msg(KPHOS, "RE", 9, administered=True, status="NA")], None),
        ("phosphate", [msg(KPHOS, "RE", 9, administered=True, status="RE")], None),
        # a replace (RP) of an IV order placed before the alert is not a new order
        ("phosphate", [msg(KPHOS, "NW", -30), msg(KPHOS, "RP", 5)], None),
        # the earliest qualifying order wins
        (
            "phosphate",
            [msg("sodium_phosphate", "NW", 9, key="A"), msg(KPHOS, "NW", 3, key="B")],
            (KPHOS, m(3)),
        ),
    ],
)
def test_only_a_new_iv_order_of_a_configured_kind_stops_escalation(
    analyte: str, messages: list[TherapyMessage], expected: tuple[str, datetime] | None
) -> None:
    check = corrective_stops(analyte, ALERT, messages, SHIPPED)
    got = None if check.stop is None else (check.stop.drug, check.stop.dose_at)
    if check.stop is not None and not check.stop.administered:
        got = (check.stop.drug, check.stop.message_time)
    assert got == expected


def test_noted_message_says_standing_oral_supplement() -> None:
    # what the alert's history shows for a refill of a standing oral supplement
    messages = [*ORAL_CALCIUM, msg(CACO3, "RP", 5, route="PO", key="STANDING")]
    check = corrective_stops("calcium", ALERT, messages, SHIPPED)
    assert [(n.order_control, why) for n, why in check.noted] == [
        ("RP", "standing oral supplement noted")
    ]


@pytest.mark.parametrize(
    ("table", "routes"),
    [
        # no routes key: the IV default
        ({"phosphate": ("potassium_phosphate",)}, DEFAULT_ROUTES),
        # an empty list: the IV default too (never "every route")
        ({"phosphate": ("potassium_phosphate",), "routes": ()}, DEFAULT_ROUTES),
        # configured routes are upper-cased
        ({"phosphate": ("potassium_phosphate",), "routes": ("iv", "IM")}, ("IV", "IM")),
    ],
)
def test_corrective_config_routes(table: dict, routes: tuple[str, ...]) -> None:
    config = CorrectiveConfig.from_routing(table)
    assert config.routes == routes
    assert "routes" not in config.drugs


def test_shipped_corrective_config_is_iv_phosphate_and_iv_calcium() -> None:
    # CLINICAL.md: IV phosphate, IV calcium by default; oral supplements never stop escalation
    assert set(SHIPPED.drugs["phosphate"]) == {"potassium_phosphate", "sodium_phosphate"}
    assert set(SHIPPED.drugs["calcium"]) == {"calcium_gluconate", "calcium_chloride"}
    assert "IV" in SHIPPED.routes and "PO" not in SHIPPED.routes


def test_routing_file_models_the_reserved_routes_key() -> None:
    # [corrective] routes is the list of routes that count, never an analyte of that name
    doc = tomllib.loads((CONFIGS / "routing.toml").read_text("utf-8"))
    corrective = load_routing(doc, ZoneInfo("UTC")).corrective
    assert corrective == SHIPPED
    assert "routes" not in corrective.drugs and "INTRAVENOUS" in corrective.routes
