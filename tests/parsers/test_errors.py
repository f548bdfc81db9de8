"""Every ParseError path names segment and field and never echoes a field value."""

from __future__ import annotations

import pytest

from parsers import LabReport, ParseError, PharmacyOrder, Rejected, parse_message
from tests.parsers.common import CONFIG, MSH_ORU, MSH_RDE, OBR, OBX_PHOS, ORC_NW, PID, RXE_FCM, msg

SECRET = "SECRET7"  # planted in the offending field; must not appear in the error text

RAS_MSH = "MSH|^~\\&|MAR|H|||20240301||RAS^O17|A1|P|2.5.1"


@pytest.mark.parametrize(
    ("segments", "segment", "field"),
    [
        # empty input
        ([], "MSH", "MSH-1"),
        # first segment is not MSH
        ([f"PID|1||{SECRET}"], "MSH", "MSH-1"),
        # bad encoding characters
        ([f"MSH|^^\\&|{SECRET}"], "MSH", "MSH-2"),
        # no message type
        ([f"MSH|^~\\&|{SECRET}|H|||20240101|||C1|P|2.5"], "MSH", "MSH-9"),
        # no control id
        ([f"MSH|^~\\&|{SECRET}|H|||20240101||ORU^R01||P|2.5"], "MSH", "MSH-10"),
        # unparseable message time
        ([f"MSH|^~\\&|A|H|||{SECRET}||ORU^R01|C1|P|2.5"], "MSH", "MSH-7"),
        # relevant ORU without PID
        ([MSH_ORU, OBR, OBX_PHOS], "PID", "PID-3"),
        # PID-3 without any identifier
        ([MSH_ORU, f"PID|1||^^^{SECRET}^MR", OBR, OBX_PHOS], "PID", "PID-3"),
        # RDE without RXE
        ([MSH_RDE, PID, ORC_NW], "RXE", "RXE-2"),
        # relevant RDE without ORC
        ([MSH_RDE, PID, RXE_FCM], "ORC", "ORC-1"),
        # relevant RDE with unusable PID-3
        ([MSH_RDE, "PID|1||", ORC_NW, RXE_FCM], "PID", "PID-3"),
        # RAS without RXA
        ([RAS_MSH, PID, "ORC|RE"], "RXA", "RXA-5"),
        # PID-3 with identifiers, none of an accepted type: never another repetition
        ([MSH_ORU, f"PID|1||{SECRET}^^^HOSP^PI", OBR, OBX_PHOS], "PID", "PID-3"),
        # relevant RAS without PID-3
        ([RAS_MSH, "PID|1||", "ORC|RE", "RXA|0|1|20240101||1435169"], "PID", "PID-3"),
    ],
)
def test_parse_error_paths(segments: list[str], segment: str, field: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_message(msg(*segments) if segments else b"", CONFIG)
    assert (err.value.segment, err.value.field) == (segment, field)
    assert segment in str(err.value) and field in str(err.value)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("segments", "rejected"),
    [
        # unparseable OBX-14 (second OBX, so the index shows)
        (
            [MSH_ORU, PID, OBR, "OBX|1|NM|718-7||1", f"OBX|2|NM|2777-1||1|mg/dL|||||F|||{SECRET}"],
            Rejected("OBX[2]", "OBX-14", "unparseable timestamp", "phosphate"),
        ),
        # unparseable OBR-7 used as fallback
        (
            [MSH_ORU, PID, f"OBR|1|||X|||{SECRET}", "OBX|1|NM|2777-1||1"],
            Rejected("OBX[1]", "OBR-7", "unparseable timestamp", "phosphate"),
        ),
        # no observation time anywhere
        (
            ["MSH|^~\\&|A|H|||||ORU^R01|C1|P|2.5", PID, "OBR|1", "OBX|1|NM|2777-1||1"],
            Rejected("OBX[1]", "OBX-14", "no observation time", "phosphate"),
        ),
        # bad TQ1-7
        (
            [MSH_RDE, PID, ORC_NW, RXE_FCM, f"TQ1|||||||{SECRET}"],
            Rejected("RXE[1]", "TQ1-7", "unparseable timestamp", "ferric_carboxymaltose"),
        ),
        # bad TQ1-8
        (
            [MSH_RDE, PID, ORC_NW, RXE_FCM, f"TQ1|||||||20240101|{SECRET}"],
            Rejected("RXE[1]", "TQ1-8", "unparseable timestamp", "ferric_carboxymaltose"),
        ),
        # bad RXE-1.4
        (
            [MSH_RDE, PID, ORC_NW, f"RXE|^^^{SECRET}|1435169|1"],
            Rejected("RXE[1]", "RXE-1.4", "unparseable timestamp", "ferric_carboxymaltose"),
        ),
        # bad ORC-15
        (
            [MSH_RDE, PID, f"ORC|NW|P|F||||||||||||{SECRET}", RXE_FCM],
            Rejected("RXE[1]", "ORC-15", "unparseable timestamp", "ferric_carboxymaltose"),
        ),
        # bad ORC-9
        (
            [MSH_RDE, PID, f"ORC|NW|P|F||||||{SECRET}", RXE_FCM],
            Rejected("RXE[1]", "ORC-9", "unparseable timestamp", "ferric_carboxymaltose"),
        ),
        # no dose time anywhere
        (
            ["MSH|^~\\&|RX|H|||||RDE^O11|R1|P|2.5.1", PID, "ORC|NW", RXE_FCM],
            Rejected("RXE[1]", "TQ1-7", "no dose time", "ferric_carboxymaltose"),
        ),
        # RAS with empty RXA-3
        (
            [RAS_MSH, PID, "ORC|RE", "RXA|0|1||20240101|1435169"],
            Rejected("RXA[1]", "RXA-3", "missing administration time", "ferric_carboxymaltose"),
        ),
        # RAS with bad RXA-3
        (
            [RAS_MSH, PID, "ORC|RE", f"RXA|0|1|{SECRET}||1435169"],
            Rejected("RXA[1]", "RXA-3", "unparseable timestamp", "ferric_carboxymaltose"),
        ),
        # RAS with bad RXA-4
        (
            [RAS_MSH, PID, "ORC|RE", f"RXA|0|1|20240101|{SECRET}|1435169"],
            Rejected("RXA[1]", "RXA-4", "unparseable timestamp", "ferric_carboxymaltose"),
        ),
    ],
)
def test_item_level_problems_are_rejected_items(segments: list[str], rejected: Rejected) -> None:
    # an unreadable catalogued item is a Rejected naming it, not an error for the message;
    # with nothing else readable the event carries no result or order, only the rejection
    out = parse_message(msg(*segments), CONFIG)
    assert isinstance(out, LabReport | PharmacyOrder)
    assert out.rejected == (rejected,)
    assert (out.results if isinstance(out, LabReport) else out.orders) == ()
    assert SECRET not in repr(out.rejected)
