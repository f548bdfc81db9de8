"""HL7 DTM/TS text -> timezone-aware datetime.

Format: ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. A value without an offset is local
time in the configured hospital time zone; an explicit offset wins. Missing parts default to
the start of the period (``202403`` is 1 March 2024 00:00). A TS's second component (degree
of precision) is the caller's business: pass component 1 only.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

from parsers.errors import ParseError

_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?",
    re.ASCII,
)
_OFFSETS: dict[str, timezone] = {}


def parse_timestamp(text: str, tz: tzinfo, segment: str, field: str) -> datetime | None:
    """Parse an HL7 date/time; "" gives None.

    Raises ParseError("unparseable timestamp", segment, field) for text that is not a DTM or
    names an impossible date, time or offset. The error never contains the text itself.
    """
    text = text.strip()
    if not text:
        return None
    m = _DTM.fullmatch(text)
    if m is None:
        raise ParseError("unparseable timestamp", segment, field)
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    if sign is None:
        zone: tzinfo = tz
    else:
        key = sign + oh + om
        cached = _OFFSETS.get(key)
        if cached is None:
            if int(oh) > 14 or int(om) > 59:
                raise ParseError("unparseable timestamp", segment, field)
            delta = timedelta(hours=int(oh), minutes=int(om))
            cached = timezone(-delta if sign == "-" else delta)
            _OFFSETS[key] = cached
        zone = cached
    try:
        return datetime(
            int(year),
            int(month) if month else 1,
            int(day) if day else 1,
            int(hour) if hour else 0,
            int(minute) if minute else 0,
            int(second) if second else 0,
            int(frac.ljust(6, "0")) if frac else 0,
            tzinfo=zone,
        )
    except (ValueError, OverflowError):
        raise ParseError("unparseable timestamp", segment, field) from None
