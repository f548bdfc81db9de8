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
    """Time told by the messages themselves (``replay``/``demo``: a live feed in fast-forward).

    ``now`` is the send time (MSH-7) of the message being processed, i.e. the moment it would
    have been processed live, so a replay decides as live processing would have (a late order
    is judged at its own arrival, the backfill rule sees the same ages) and decides the same
    way on every run. ``high_water`` is the latest message time seen: scheduled work
    (reminders, escalations) runs against it. Before any message it is the wall clock.
    """

    def __init__(self) -> None:
        self._now: datetime | None = None
        self._high_water: datetime | None = None

    def advance(self, moment: datetime | None) -> None:
        if moment is None:
            return
        self._now = moment.astimezone(UTC)
        if self._high_water is None or self._now > self._high_water:
            self._high_water = self._now

    def now(self) -> datetime:
        return self._now if self._now is not None else datetime.now(UTC)

    def high_water(self) -> datetime:
        return self._high_water if self._high_water is not None else datetime.now(UTC)


class FixedClock:
    """A clock tests move by hand."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment
