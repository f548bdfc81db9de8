"""HL7 DTM/TS text -> timezone-aware datetime.

Format: ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``. A value without an offset is local
time in the configured hospital time zone; an explicit offset wins. Missing parts default to
the start of the period (``202403`` is 1 March 2024 00:00). A TS's second component (degree
of precision) is the caller's business: pass component 1 only.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache

from parsers.errors import ParseError

_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?"
    r"(?:([+-])(\d{2})(\d{2}))?",
    re.ASCII,
)
# YYYYMMDDHHMMSS (hour, minute and second in range) with an optional offset of at most
# +/-14:59, the general rule's limit. Month and day are checked by datetime itself.
_SECONDS = re.compile(
    r"\d{8}(?:[01]\d|2[0-3])[0-5]\d[0-5]\d(?:[+-](?:0\d|1[0-4])[0-5]\d)?", re.ASCII
)
_fromisoformat = datetime.fromisoformat
_OFFSETS: dict[str, timezone] = {}


def parse_timestamp(text: str, tz: tzinfo, segment: str, field: str) -> datetime | None:
    """Parse an HL7 date/time; "" gives None.

    Raises ParseError("unparseable timestamp", segment, field) for text that is not a DTM or
    names an impossible date, time or offset. The error never contains the text itself.
    """
    text = text.strip()
    if not text:
        return None
    try:
        return _parse(text, tz)
    except ValueError:
        raise ParseError("unparseable timestamp", segment, field) from None


# Cached per (text, zone): every OBX of a panel usually repeats the same OBX-14, and the
# datetime is immutable. Failures are not cached (lru_cache does not keep exceptions).
@lru_cache(maxsize=4096)
def _parse(text: str, tz: tzinfo) -> datetime:
    """The datetime ``text`` (stripped, non-empty) means; ValueError if it is not a DTM."""
    if _SECONDS.fullmatch(text) is not None:
        # The shape nearly every feed sends: datetime.fromisoformat reads it (as ISO 8601
        # basic format) several times faster than the general regex and int() calls below.
        dt = _fromisoformat(text[:8] + "T" + text[8:])
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=tz)
    m = _DTM.fullmatch(text)
    if m is None:
        raise ValueError("not a DTM")
    year, month, day, hour, minute, second, frac, sign, oh, om = m.groups()
    if sign is None:
        zone: tzinfo = tz
    else:
        key = sign + oh + om
        cached = _OFFSETS.get(key)
        if cached is None:
            if int(oh) > 14 or int(om) > 59:
                raise ValueError("offset out of range")
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
    except OverflowError as err:
        raise ValueError("out of range") from err
