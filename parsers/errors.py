"""The one exception the parsers raise."""

from __future__ import annotations


class ParseError(ValueError):
    """A message that cannot be used, with where it went wrong.

    ``reason`` is a short, PHI-free sentence; ``segment`` and ``field`` locate the problem
    (e.g. ``segment="OBX[3]"``, ``field="OBX-14"``). The message text never includes field
    values, because they may be patient data; ``str(error)`` is safe to log and to store in the
    dead-letter table.
    """

    def __init__(self, reason: str, segment: str = "", field: str = "") -> None:
        self.reason = reason
        self.segment = segment
        self.field = field
        where = ", ".join(part for part in (segment, field) if part)
        super().__init__(f"{reason} ({where})" if where else reason)
