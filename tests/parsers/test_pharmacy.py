"""RDE^O11 / RDE^O01 / RAS^O17 parsing: classification first, dose time fallbacks, fields."""

from __future__ import annotations

from datetime import datetime

import pytest

from parsers import Ignored, MedicationOrder, PharmacyOrder, parse_message
from tests.parsers.common import CONFIG, MSH_RDE, ORC_NW, PID, RXE_FCM, TZ, msg


def _order(*segments: str, msh: str = MSH_RDE) -> MedicationOrder:
    out = parse_message(msg(msh, PID, *segments), CONFIG)
    assert isinstance(out, PharmacyOrder), out
    return out.order


def test_rde_all_fields() -> None:
    # every MedicationOrder field of an RDE^O11 comes from the documented place
    order = _order(
        "PV1|1|O|INF^3",
        "ORC|nw|PL1^EPIC|FL1^RX||SC||||20240301092500|||9876^DOC^A",
        "RXE||1435169^Ferric carboxymaltose 750 MG^RXNORM^^Injectafer|750||mg^milligram|INJ",
        "TQ1|1||||||202403011000|202403011030",
        "RXR|iv^Intravenous^HL70162",
    )
    assert order == MedicationOrder(
        order_control="NW",
        order_status="SC",
        placer_order_id="PL1",
        filler_order_id="FL1",
        drug="ferric_carboxymaltose",
        drug_code="1435169",
        drug_code_system="RXNORM",
        drug_text="Ferric carboxymaltose 750 MG",
        route="IV",
        dose_at=datetime(2024, 3, 1, 10, 0, tzinfo=TZ),
        end_at=datetime(2024, 3, 1, 10, 30, tzinfo=TZ),
        give_amount="750",
        give_units="mg",
        ordering_provider="9876",
        administered=False,
    )


@pytest.mark.parametrize(
    ("rxe2", "drug"),
    [
        ("1435169^Anything^RXNORM", "ferric_carboxymaltose"),  # code RXE-2.1
        ("X^Y^L^993452^Z^RXNORM", "denosumab"),  # alternate code RXE-2.4
        ("^Injectafer 750 mg^L", "ferric_carboxymaltose"),  # name RXE-2.2
        ("LOC1^Local^L^^Denosumab 60 mg", "denosumab"),  # alternate name RXE-2.5
    ],
)
def test_drug_classification_inputs(rxe2: str, drug: str) -> None:
    order = _order(ORC_NW, f"RXE||{rxe2}|1||mg")
    assert order.drug == drug


def test_uncatalogued_drug_ignored_before_anything_else() -> None:
    # untracked drug: Ignored even though PID and ORC are missing
    out = parse_message(msg(MSH_RDE, "RXE||313782^Acetaminophen^RXNORM|500||mg"), CONFIG)
    assert isinstance(out, Ignored) and out.reason == "drug not in catalog"


def test_classifier_receives_only_non_empty_parts() -> None:
    # the classifier sees [RXE-2.1, RXE-2.4] and [RXE-2.2, RXE-2.5] without empty strings
    seen: list[tuple[list[str], list[str]]] = []

    def spy(codes: list[str], names: list[str]) -> None:
        seen.append((list(codes), list(names)))

    config = CONFIG.__class__(classify_drug=spy)  # type: ignore[arg-type]
    parse_message(msg(MSH_RDE, "RXE||^Iron\\T\\sucrose^^C4"), config)
    assert seen == [(["C4"], ["Iron&sucrose"])]


@pytest.mark.parametrize(
    ("segments", "dose_day", "end_day"),
    [
        # TQ1-7 / TQ1-8 first
        (
            [
                "ORC|NW|P|F||||||20240104||||||20240103",
                "RXE|^^^20240102&M^20240109|1435169|1",
                "TQ1|||||||20240101|20240108",
            ],
            1,
            8,
        ),
        # v2.3/2.4 timing in RXE-1.4 / RXE-1.5 (TS subcomponent precision ignored)
        (["ORC|NW|P|F||||||20240104||||||20240103", "RXE|^^^20240102&M^20240109|1435169|1"], 2, 9),
        # else ORC-15 (order effective date/time)
        (["ORC|NW|P|F||||||20240104||||||20240103", "RXE||1435169|1"], 3, None),
        # else ORC-9 (transaction date/time)
        (["ORC|NW|P|F||||||20240104", "RXE||1435169|1"], 4, None),
        # else MSH-7 (20240301 in MSH_RDE)
        (["ORC|NW|P|F", "RXE||1435169|1"], 1, None),
        # TQ1 before RXE (anywhere after ORC in the group) still times the order
        (["ORC|NW|P|F", "TQ1|||||||20240105", "RXE||1435169|1"], 5, None),
        # a TQ1 of a second order group is not used
        (
            ["ORC|NW|P|F||||||20240104", "RXE||1435169|1", "ORC|NW|P2|F2", "TQ1|||||||20240106"],
            4,
            None,
        ),
    ],
)
def test_dose_at_fallback(segments: list[str], dose_day: int, end_day: int | None) -> None:
    order = _order(*segments)
    assert order.dose_at.day == dose_day and order.dose_at.tzinfo is TZ
    assert (order.end_at.day if order.end_at else None) == end_day


def test_rde_o01_legacy_and_provider_fallback() -> None:
    # RDE^O01 is parsed like RDE^O11; ORC-12 empty falls back to RXE-13
    msh = "MSH|^~\\&|RX|H|||20040210||RDE^O01|R2|P|2.3"
    order = _order("ORC|NW|P|F", RXE_FCM + "||||||||4321^DOC", msh=msh)
    assert order.ordering_provider == "4321"


def test_cancel_order() -> None:
    # order control and status are carried as sent (upper-cased)
    order = _order("ORC|ca|P|F||cm", RXE_FCM)
    assert (order.order_control, order.order_status) == ("CA", "CM")


RAS_MSH = "MSH|^~\\&|MAR|H|||20240301120000||RAS^O17^RAS_O17|A1|P|2.5.1"


def test_ras_administration() -> None:
    # RAS^O17: drug from RXA-5, dose time RXA-3, end RXA-4, route from RXR after the RXA
    order = _order(
        "ORC|RE|P|F|||||||||77^NURSE",
        "RXA|0|1|202403011005|202403011035|1435169^Injectafer^RXNORM|750|mg",
        "RXR|IV",
        msh=RAS_MSH,
    )
    assert order.administered is True
    assert (order.drug, order.dose_at, order.end_at) == (
        "ferric_carboxymaltose",
        datetime(2024, 3, 1, 10, 5, tzinfo=TZ),
        datetime(2024, 3, 1, 10, 35, tzinfo=TZ),
    )
    assert (order.route, order.give_amount, order.give_units, order.ordering_provider) == (
        "IV",
        "750",
        "mg",
        "77",
    )


@pytest.mark.parametrize(
    ("rxa", "reason"),
    [
        (
            "RXA|0|1|20240301|20240301|313782^Acetaminophen|500|mg",
            "drug not in catalog",
        ),  # untracked
        # refused (RXA-20 RE): no drug reached the patient
        ("RXA|0|1|20240301|20240301|1435169^FCM|750|mg|||||||||||||RE", "administration not given"),
    ],
)
def test_ras_ignored(rxa: str, reason: str) -> None:
    out = parse_message(msg(RAS_MSH, PID, "ORC|RE|P|F", rxa), CONFIG)
    assert isinstance(out, Ignored) and out.reason == reason
