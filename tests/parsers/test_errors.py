"""Every ParseError path names segment and field and never echoes a field value."""

from __future__ import annotations

import pytest

from parsers import ParseError, parse_message
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
        # unparseable OBX-14 (second OBX, so the index shows)
        (
            [MSH_ORU, PID, OBR, "OBX|1|NM|718-7||1", f"OBX|2|NM|2777-1||1|mg/dL|||||F|||{SECRET}"],
            "OBX[2]",
            "OBX-14",
        ),
        # unparseable OBR-7 used as fallback
        ([MSH_ORU, PID, f"OBR|1|||X|||{SECRET}", "OBX|1|NM|2777-1||1"], "OBR[1]", "OBR-7"),
        # no observation time anywhere
        (
            ["MSH|^~\\&|A|H|||||ORU^R01|C1|P|2.5", PID, "OBR|1", "OBX|1|NM|2777-1||1"],
            "OBX[1]",
            "OBX-14",
        ),
        # RDE without RXE
        ([MSH_RDE, PID, ORC_NW], "RXE", "RXE-2"),
        # relevant RDE without ORC
        ([MSH_RDE, PID, RXE_FCM], "ORC", "ORC-1"),
        # bad TQ1-7
        ([MSH_RDE, PID, ORC_NW, RXE_FCM, f"TQ1|||||||{SECRET}"], "TQ1", "TQ1-7"),
        # bad TQ1-8
        ([MSH_RDE, PID, ORC_NW, RXE_FCM, f"TQ1|||||||20240101|{SECRET}"], "TQ1", "TQ1-8"),
        # bad RXE-1.4
        ([MSH_RDE, PID, ORC_NW, f"RXE|^^^{SECRET}|1435169|1"], "RXE", "RXE-1.4"),
        # bad ORC-15
        ([MSH_RDE, PID, f"ORC|NW|P|F||||||||||||{SECRET}", RXE_FCM], "ORC", "ORC-15"),
        # bad ORC-9
        ([MSH_RDE, PID, f"ORC|NW|P|F||||||{SECRET}", RXE_FCM], "ORC", "ORC-9"),
        # no dose time anywhere
        (["MSH|^~\\&|RX|H|||||RDE^O11|R1|P|2.5.1", PID, "ORC|NW", RXE_FCM], "TQ1", "TQ1-7"),
        # relevant RDE with unusable PID-3
        ([MSH_RDE, "PID|1||", ORC_NW, RXE_FCM], "PID", "PID-3"),
        # RAS without RXA
        ([RAS_MSH, PID, "ORC|RE"], "RXA", "RXA-5"),
        # RAS with empty RXA-3
        ([RAS_MSH, PID, "ORC|RE", "RXA|0|1||20240101|1435169"], "RXA", "RXA-3"),
        # RAS with bad RXA-3
        ([RAS_MSH, PID, "ORC|RE", f"RXA|0|1|{SECRET}||1435169"], "RXA", "RXA-3"),
    ],
)
def test_parse_error_paths(segments: list[str], segment: str, field: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_message(msg(*segments) if segments else b"", CONFIG)
    assert (err.value.segment, err.value.field) == (segment, field)
    assert segment in str(err.value) and field in str(err.value)
    assert SECRET not in str(err.value)
