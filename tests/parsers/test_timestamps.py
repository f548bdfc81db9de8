"""HL7 DTM/TS parsing and time zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from parsers.errors import ParseError
from parsers.timestamps import parse_timestamp

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # full precision without offset: local hospital time
        ("20240310064500", datetime(2024, 3, 10, 6, 45, tzinfo=NY)),
        # explicit offset wins over the configured zone
        ("20240310064500-0500", datetime(2024, 3, 10, 6, 45, tzinfo=timezone(timedelta(hours=-5)))),
        # +0000 is UTC, not local
        ("202403100645+0000", datetime(2024, 3, 10, 6, 45, tzinfo=UTC)),
        # fractional seconds, 1 to 4 digits
        ("20240310064500.1234", datetime(2024, 3, 10, 6, 45, 0, 123400, tzinfo=NY)),
        # minute precision (v2.3 TS often stops here)
        ("202403100645", datetime(2024, 3, 10, 6, 45, tzinfo=NY)),
        # date only: midnight local
        ("20240310", datetime(2024, 3, 10, tzinfo=NY)),
        # year-month: first day of the month
        ("202403", datetime(2024, 3, 1, tzinfo=NY)),
        # offset on a date-only value
        ("20240310+0130", datetime(2024, 3, 10, tzinfo=timezone(timedelta(hours=1, minutes=30)))),
        # surrounding blanks are ignored
        (" 20240310 ", datetime(2024, 3, 10, tzinfo=NY)),
        # empty means absent
        ("", None),
    ],
)
def test_parse_timestamp(text: str, expected: datetime | None) -> None:
    got = parse_timestamp(text, NY, "OBX[1]", "OBX-14")
    assert got == expected
    if got is not None:
        assert got.tzinfo is not None and got.utcoffset() == expected.utcoffset()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "text",
    [
        "2024031",  # odd number of digits
        "20241310",  # month 13
        "20240230",  # 30 February
        "20240310250000",  # hour 25
        "20240310236000",  # minute 60
        "20240310064500.12345",  # five fraction digits
        "00000101",  # year 0
        "20240310+2500",  # offset beyond +14:00
        "2024-03-10",  # ISO punctuation is not HL7
        "yesterday",  # text
        "２０２４０３１０",  # full-width digits are not HL7 digits
    ],
)
def test_parse_timestamp_errors(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse_timestamp(text, NY, "OBX[2]", "OBX-14")
    assert (err.value.segment, err.value.field) == ("OBX[2]", "OBX-14")
    assert text.strip() not in str(err.value)  # no field value in the error text
