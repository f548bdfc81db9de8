"""Pure geometry for the timeline chart: text widths, dose-label placement and time ticks.

The chart is drawn on the server without a browser, so a label's width is estimated from its
characters. The estimate is deliberately wide: each class of character gets at least the
advance width of DejaVu Sans (the widest common fallback of ``system-ui``, the font of the
headless Chromium the screenshot tests run), so a box computed here contains the text as any
phone draws it, and boxes that do not intersect here do not intersect on the screen.

No I/O, no clock; everything is in SVG user units.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

ELLIPSIS = "…"

# Advance widths in em, rounded up from DejaVu Sans Book; bold text is scaled by BOLD.
_NARROW = frozenset("iIl.,:;'|!j")
_SEMI = frozenset("frt()-/[]")
_WIDE = frozenset("mwMW…")
BOLD = 1.12


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """An upper bound of the rendered width of ``text`` at font size ``size``."""
    em = 0.0
    for ch in text:
        if ch in _NARROW:
            em += 0.32
        elif ch in _SEMI:
            em += 0.46
        elif ch == " ":
            em += 0.34
        elif ch in _WIDE:
            em += 1.0
        elif ch.isupper():
            em += 0.82
        else:
            em += 0.66
    return em * size * (BOLD if bold else 1.0)


def fit_text(text: str, max_width: float, size: float, *, keep: str = "") -> str:
    """``text`` cut at the end with an ellipsis so that ``text + keep`` fits ``max_width``.

    ``keep`` (a suffix such as a date) is never cut; the result excludes it. Returns the
    ellipsis alone when not even one character fits.
    """
    if text_width(text + keep, size) <= max_width:
        return text
    for end in range(len(text) - 1, 0, -1):
        short = text[:end].rstrip() + ELLIPSIS
        if text_width(short + keep, size) <= max_width:
            return short
    return ELLIPSIS


@dataclass(frozen=True)
class Box:
    """An axis-aligned box: ``x0 <= x1``, ``y0 <= y1`` (y grows downwards)."""

    x0: float
    y0: float
    x1: float
    y1: float

    def intersects(self, other: Box) -> bool:
        """True when the boxes share interior area (touching edges do not count)."""
        return (
            self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and other.y0 < self.y1
        )


@dataclass(frozen=True)
class PlacedLabel:
    """Where one label goes: the text's anchor point and its box."""

    index: int  # position in the request list
    row: int  # 0 = the row nearest the plot
    x: float  # the text's x with ``text-anchor="start"``
    baseline: float
    box: Box

    def shifted(self, dy: float) -> PlacedLabel:
        """The same placement moved down by ``dy``."""
        b = self.box
        return PlacedLabel(
            self.index, self.row, self.x, self.baseline + dy, Box(b.x0, b.y0 + dy, b.x1, b.y1 + dy)
        )


def place_labels(
    anchors: Sequence[tuple[float, float]],
    *,
    left: float,
    right: float,
    bottom: float,
    row_height: float,
    size: float,
    gap: float = 6.0,
) -> list[PlacedLabel]:
    """Place one label per ``(x, width)`` request in rows stacked upwards from ``bottom``.

    A label sits just beside its ``x`` (its dose line, drawn from the label down to the plot),
    on whichever side fits inside ``[left, right]``, else is pushed inside. Each label goes to
    the lowest row where its box stays ``gap`` apart from the row's other labels and no dose
    line crosses a label, or, when no row avoids every crossing, the lowest row where the
    boxes alone stay apart (a crossing line then runs behind the text's halo). Of the
    placements made taking labels left to right, right to left, and those a label would
    cover first (``_beneath_first``), with either side preferred, the one with the fewest
    crossings, then rows, wins. No two boxes ever intersect. A label wider than
    ``right - left`` still gets a row (callers shorten text with ``fit_text``). Returns one
    placement per request, in request order.
    """
    by_x = sorted(range(len(anchors)), key=lambda i: (anchors[i][0], i))
    best: tuple[int, int, list[PlacedLabel]] | None = None
    for prefer_left in (False, True):
        starts = [_side(x, w, prefer_left, left, right) for x, w in anchors]
        for order in (by_x, by_x[::-1], _beneath_first(anchors, starts, by_x)):
            placed = _place(anchors, order, starts, bottom, row_height, size, gap)
            score = (crossings(placed, anchors), max((p.row for p in placed), default=0))
            if best is None or score < best[:2]:
                best = (*score, placed)
    assert best is not None
    return best[2]


def crossings(placed: Sequence[PlacedLabel], anchors: Sequence[tuple[float, float]]) -> int:
    """How many (label, dose line) pairs cross: a line runs from its label's row down."""
    return sum(
        1
        for label in placed
        for dose in placed
        if dose.row > label.row and label.box.x0 - 2 <= anchors[dose.index][0] <= label.box.x1 + 2
    )


def _side(x: float, width: float, prefer_left: bool, left: float, right: float) -> float:
    """Where a label of ``width`` for a line at ``x`` starts."""
    sides = (x - 4 - width, x + 4) if prefer_left else (x + 4, x - 4 - width)
    fits = [c for c in sides if left <= c and c + width <= right]
    return fits[0] if fits else max(left, min(x + 4, right - width))


def _beneath_first(
    anchors: Sequence[tuple[float, float]], starts: Sequence[float], by_x: Sequence[int]
) -> list[int]:
    """An order in which a label comes after every dose whose line its box would cover (so
    it can go above them and their lines stop below it); by ``x`` where that is circular."""
    covers = {
        i: {
            j
            for j in by_x
            if j != i and starts[i] - 2 <= anchors[j][0] <= starts[i] + anchors[i][1] + 2
        }
        for i in by_x
    }
    order: list[int] = []
    pending = list(by_x)
    while pending:
        ready = [i for i in pending if not covers[i] - set(order)]
        pick = ready[0] if ready else pending[0]
        order.append(pick)
        pending.remove(pick)
    return order


def _place(
    anchors: Sequence[tuple[float, float]],
    order: Sequence[int],
    starts: Sequence[float],
    bottom: float,
    row_height: float,
    size: float,
    gap: float,
) -> list[PlacedLabel]:
    spans: list[list[tuple[float, float]]] = []  # per row, the labels' x extents
    lines: list[tuple[float, int]] = []  # (x, row): a line runs through every row below
    placed: dict[int, PlacedLabel] = {}
    ascent, descent = size * 0.95, size * 0.3
    for index in order:
        x, width = anchors[index]
        x0 = starts[index]
        x1 = x0 + width

        def apart(row: int, x0: float = x0, x1: float = x1) -> bool:
            return row == len(spans) or all(x1 + gap <= a or b + gap <= x0 for a, b in spans[row])

        def uncrossed(row: int, x: float = x, x0: float = x0, x1: float = x1) -> bool:
            below = any(a - 2 <= x <= b + 2 for r in range(row) for a, b in spans[r])
            through = any(r > row and x0 - 2 <= xl <= x1 + 2 for xl, r in lines)
            return not (below or through)

        candidates = range(len(spans) + 1)
        row = next(
            (r for r in candidates if apart(r) and uncrossed(r)),
            next(r for r in candidates if apart(r)),
        )
        if row == len(spans):
            spans.append([])
        spans[row].append((x0, x1))
        lines.append((x, row))
        baseline = bottom - row * row_height - descent
        box = Box(x0, baseline - ascent, x1, baseline + descent)
        placed[index] = PlacedLabel(index, row, x0, baseline, box)
    return [placed[i] for i in range(len(anchors))]


def dose_groups(
    doses: Sequence[tuple[datetime, Hashable]], *, within: timedelta, keep: int
) -> tuple[list[list[int]], int]:
    """Which doses share a label, and how many are left without one.

    ``doses`` are ``(time, drug)`` in time order. A dose joins the label of the one before
    it when it is the same drug given at most ``within`` later (a course of iron sucrose is
    one label, not twelve). Only the latest ``keep`` labels are kept, so a long history
    never buries the chart under labels; returns (the kept groups as lists of indexes, in
    time order, the number of doses in the groups left out).
    """
    groups: list[list[int]] = []
    for index, (moment, drug) in enumerate(doses):
        if groups:
            last = doses[groups[-1][-1]]
            if last[1] == drug and moment - last[0] <= within:
                groups[-1].append(index)
                continue
        groups.append([index])
    kept = groups[-keep:] if keep > 0 else []
    return kept, sum(len(g) for g in groups) - sum(len(g) for g in kept)


# --------------------------------------------------------------------------------------------
# time ticks

_DAY_STEPS = (1, 2, 7, 14)
_MONTH_STEPS = (1, 2, 3, 6, 12)


def _month_starts(start: datetime, end: datetime, months: int) -> list[datetime]:
    ticks: list[datetime] = []
    year, month = start.year, start.month
    while True:
        moment = datetime(year, month, 1, tzinfo=start.tzinfo)
        if moment > end:
            return ticks
        if moment >= start and (month - 1) % months == 0:
            ticks.append(moment)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def time_ticks(t0: datetime, t1: datetime, zone: ZoneInfo, max_ticks: int) -> list[datetime]:
    """Local midnights between ``t0`` and ``t1`` to label the time axis: every 1, 2, 7 or 14
    days (weeks on Mondays), else month starts every 1, 2, 3, 6 or 12 months, the finest
    step that gives at most ``max_ticks`` (at least 2) ticks. Each is a real calendar day."""
    start, end = t0.astimezone(zone), t1.astimezone(zone)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(days=1)
    limit = max(max_ticks, 2)
    for step in _DAY_STEPS:
        begin = first
        while step >= 7 and begin.weekday() != 0:
            begin += timedelta(days=1)
        ticks = []
        tick = begin
        while tick <= end:
            ticks.append(tick)
            # Aware arithmetic in one zone adds wall-clock days: ticks stay on local midnight
            # across a DST change.
            tick += timedelta(days=step)
        if len(ticks) <= limit:
            return ticks
    for months in _MONTH_STEPS:
        ticks = _month_starts(first, end, months)
        if len(ticks) <= limit:
            return ticks
    return _month_starts(first, end, 12)[:limit]
