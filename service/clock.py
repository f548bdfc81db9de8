"""Clocks. The clinical core never reads one; the service passes ``now`` down from here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class MessageClock:
    """Time advanced by the messages themselves (``replay --clock messages``).

    ``now`` is the latest message time seen so far, so a replay of a historical feed makes the
    same decisions (backfill, reminders, escalations) it would have made live, every time.
    Before any message it falls back to the wall clock.
    """

    def __init__(self) -> None:
        self._now: datetime | None = None

    def advance(self, moment: datetime | None) -> None:
        if moment is not None and (self._now is None or moment > self._now):
            self._now = moment.astimezone(UTC)

    def now(self) -> datetime:
        return self._now if self._now is not None else datetime.now(UTC)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment
