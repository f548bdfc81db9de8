"""RDE^O11 / RDE^O01 / RAS^O17 parsing: classification first, dose time fallbacks, fields."""

from __future__ import annotations

from datetime import datetime

import pytest

from parsers import Ignored, MedicationOrder, ParseError, PharmacyOrder, Rejected, parse_message
from tests.parsers.common import CONFIG, MSH_RDE, ORC_NW, PID, RXE_FCM, TZ, msg


def _parse(*segments: str, msh: str = MSH_RDE) -> PharmacyOrder:
    out = parse_message(msg(msh, PID, *segments), CONFIG)
    assert isinstance(out, PharmacyOrder), out
    return out


def _order(*segments: str, msh: str = MSH_RDE) -> MedicationOrder:
    out = _parse(*segments, msh=msh)
    assert out.rejected == ()
    (order,) = out.orders
    return order


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


def test_ras_uncatalogued_drug_ignored() -> None:
    # an administration of a drug LabSentinel does not track
    rxa = "RXA|0|1|20240301|20240301|313782^Acetaminophen|500|mg"
    out = parse_message(msg(RAS_MSH, PID, "ORC|RE|P|F", rxa), CONFIG)
    assert isinstance(out, Ignored) and out.reason == "drug not in catalog"


@pytest.mark.parametrize(
    ("rxa20", "status"),
    [
        ("RE", "RE"),  # refused: kept for the audit, the clinical core opens no window
        ("na", "NA"),  # not administered, upper-cased
        ("CP", "CP"),  # complete
        ("", ""),  # not sent
    ],
)
def test_ras_keeps_every_completion_status(rxa20: str, status: str) -> None:
    rxa = f"RXA|0|1|20240301|20240301|1435169^FCM|750|mg|||||||||||||{rxa20}"
    order = _order("ORC|RE|P|F", rxa, msh=RAS_MSH)
    assert (order.administered, order.completion_status) == (True, status)


ANTIBIOTIC = "RXE||2193^Ceftriaxone 1 G^RXNORM|1||g"


def test_rde_with_antibiotic_then_iron_keeps_the_iron() -> None:
    # an uncatalogued first ORDER group never hides a catalogued second one
    out = _parse(
        "ORC|NW|PABX|FABX",
        ANTIBIOTIC,
        "TQ1|||||||202403010800",
        "RXR|IV",
        "ORC|NW|PFCM|FFCM",
        RXE_FCM,
        "TQ1|||||||202403011000",
        "RXR|IV",
    )
    (order,) = out.orders
    assert (order.drug, order.placer_order_id, order.dose_at.hour) == (
        "ferric_carboxymaltose",
        "PFCM",
        10,
    )


def test_rde_with_two_catalogued_groups_gives_both_in_order() -> None:
    # every ORDER group is read, each with its own ORC, TQ1 and RXR
    out = _parse(
        "ORC|NW|P1|F1",
        RXE_FCM,
        "TQ1|||||||20240301",
        "RXR|IV",
        "ORC|DC|P2|F2",
        "RXE||993452^Prolia^RXNORM|60||mg",
        "RXR|SC",
        "TQ1|||||||20240302",
    )
    assert [
        (o.drug, o.order_control, o.placer_order_id, o.route, o.dose_at.day) for o in out.orders
    ] == [
        ("ferric_carboxymaltose", "NW", "P1", "IV", 1),
        ("denosumab", "DC", "P2", "SC", 2),
    ]


def test_rde_group_with_bad_time_is_rejected_and_others_come_through() -> None:
    # one unreadable group is a Rejected naming it; the next group is still an order
    out = _parse(
        "ORC|NW|P1|F1",
        RXE_FCM,
        "TQ1|||||||NOTATIME",
        "ORC|NW|P2|F2",
        "RXE||993452^Prolia^RXNORM|60||mg",
    )
    assert [o.drug for o in out.orders] == ["denosumab"]
    assert out.rejected == (
        Rejected("RXE[1]", "TQ1-7", "unparseable timestamp", "ferric_carboxymaltose"),
    )


def test_rde_without_dose_time_is_rejected() -> None:
    # no TQ1, RXE-1, ORC-15, ORC-9 or MSH-7: no time to place the dose, so Rejected
    msh = "MSH|^~\\&|RX|H|||||RDE^O11|R1|P|2.5.1"
    out = _parse("ORC|NW", RXE_FCM, msh=msh)
    assert (out.orders, out.rejected) == (
        (),
        (Rejected("RXE[1]", "TQ1-7", "no dose time", "ferric_carboxymaltose"),),
    )


def test_rde_rxe_before_any_orc_is_rejected() -> None:
    # an RXE outside every ORDER group has no order control: Rejected, the group after it kept
    out = _parse(RXE_FCM, "ORC|NW|P2|F2", "RXE||993452^Prolia^RXNORM|60||mg")
    assert [o.drug for o in out.orders] == ["denosumab"]
    assert out.rejected == (
        Rejected("RXE[1]", "ORC-1", "order outside an order group", "ferric_carboxymaltose"),
    )


def test_rde_without_any_orc_is_a_parse_error() -> None:
    # ORC is required in an RDE; a catalogued RXE without any ORC dead-letters the message
    with pytest.raises(ParseError) as err:
        parse_message(msg(MSH_RDE, PID, RXE_FCM), CONFIG)
    assert (err.value.segment, err.value.field) == ("ORC", "ORC-1")


def test_rde_two_rxe_in_one_group_are_two_orders() -> None:
    # a malformed group with two RXE: each is read once, with the TQ1/RXR nearest to it
    out = _parse(
        "ORC|NW|P1|F1",
        RXE_FCM,
        "TQ1|||||||20240301",
        "RXR|IV",
        "RXE||993452^Prolia^RXNORM|60||mg",
        "TQ1|||||||20240302",
        "RXR|SC",
    )
    assert [(o.drug, o.placer_order_id, o.route, o.dose_at.day) for o in out.orders] == [
        ("ferric_carboxymaltose", "P1", "IV", 1),
        ("denosumab", "P1", "SC", 2),
    ]


def test_ras_with_two_rxa_gives_both_administrations() -> None:
    # every RXA is an administration, each with its ORC and the RXR after it
    out = _parse(
        "ORC|RE|P1|F1",
        "RXA|0|1|202403011005||1435169^Injectafer^RXNORM|750|mg",
        "RXR|IV",
        "ORC|RE|P2|F2",
        "RXA|0|1|202403021005||993452^Prolia^RXNORM|60|mg|||||||||||||CP",
        "RXR|SC",
        msh=RAS_MSH,
    )
    assert [
        (o.drug, o.placer_order_id, o.route, o.dose_at.day, o.completion_status) for o in out.orders
    ] == [
        ("ferric_carboxymaltose", "P1", "IV", 1, ""),
        ("denosumab", "P2", "SC", 2, "CP"),
    ]


def test_ras_consecutive_rxa_share_the_rxr_after_them() -> None:
    # ADMINISTRATION is {RXA} RXR: both RXA take the one RXR; a refused one is kept (RE)
    out = _parse(
        "ORC|RE|P1|F1",
        "RXA|0|1|20240301||1435169^FCM|750|mg|||||||||||||RE",
        "RXA|0|2|20240302||1435169^FCM|750|mg|||||||||||||CP",
        "RXR|IV",
        msh=RAS_MSH,
    )
    assert [(o.route, o.completion_status, o.dose_at.day) for o in out.orders] == [
        ("IV", "RE", 1),
        ("IV", "CP", 2),
    ]


@pytest.mark.parametrize(
    ("rxa3", "rejected"),
    [
        # empty RXA-3: the administration start is required
        ("", Rejected("RXA[1]", "RXA-3", "missing administration time", "ferric_carboxymaltose")),
        # unreadable RXA-3
        ("SOON", Rejected("RXA[1]", "RXA-3", "unparseable timestamp", "ferric_carboxymaltose")),
    ],
)
def test_ras_unreadable_rxa3_rejects_only_that_rxa(rxa3: str, rejected: Rejected) -> None:
    out = _parse(
        "ORC|RE|P1|F1",
        f"RXA|0|1|{rxa3}||1435169^FCM|750|mg",
        "RXA|0|1|20240302||993452^Prolia|60|mg",
        msh=RAS_MSH,
    )
    assert [o.drug for o in out.orders] == ["denosumab"]
    assert out.rejected == (rejected,)


def test_ras_rxa_without_orc_has_empty_order_fields() -> None:
    # ORC is optional in an RAS: ids and control are then empty
    order = _order("RXA|0|1|20240301||1435169^FCM|750|mg", msh=RAS_MSH)
    assert (order.order_control, order.placer_order_id, order.ordering_provider) == ("", "", "")
