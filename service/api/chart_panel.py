"""One panel of the timeline chart (a mineral over time) and the drawing's shared constants.

Drawn for one ``Layout`` in SVG user units; see ``service.api.chart`` for the whole chart.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from service.api.chart_layout import Box, fit_text, text_width
from service.api.views.timeline import TimelinePoint
from service.runtime.settings import ThresholdSettings

COLOURS = {
    "normal": "#1f4e79",
    "warning": "#b7791f",
    "high": "#c53030",
    "critical": "#742a2a",
    "iron": "#8b4513",
    "iron_window": "#f6e0c8",
    "antiresorptive": "#6b46c1",
    "grid": "#e2e8f0",
    "axis": "#4a5568",
}
HALO = 'stroke="#fff" stroke-width="4" stroke-linejoin="round" paint-order="stroke"'


@dataclass(frozen=True)
class Layout:
    """The geometry of one drawing of the chart, in SVG user units."""

    name: str  # the SVG's class: chart-<name>
    width: int
    left: int  # room for the y tick labels
    right: int
    panel_h: int
    font: int = 13  # every text is at least this many user units
    pad: int = 6  # horizontal margin of text at the edges
    short_titles: bool = False


TITLE_SPACE = 44  # panel title and threshold key above each panel
PANEL_GAP = 14


@dataclass(frozen=True)
class Panel:
    title: str
    short_title: str
    unit: str
    analytes: tuple[str, ...]
    threshold_key: str
    floor: float  # y range always includes [floor, ceiling]
    ceiling: float


PANELS = (
    Panel("Phosphate", "Phosphate", "mg/dL", ("phosphate",), "phosphate", 0.0, 5.0),
    Panel(
        "Calcium (corrected ◆ where reported)",
        "Calcium (corrected ◆)",
        "mg/dL",
        ("calcium", "corrected_calcium"),
        "calcium",
        6.0,
        11.0,
    ),
    Panel(
        "Ionized calcium",
        "Ionized calcium",
        "mmol/L",
        ("ionized_calcium",),
        "ionized_calcium",
        0.7,
        1.4,
    ),
)


def esc(text: object) -> str:
    """Text safe inside SVG markup and attributes."""
    return html.escape(str(text), quote=True)


def severity_of(value: float, t: ThresholdSettings | None) -> str:
    if t is None:
        return "normal"
    if value < t.critical:
        return "critical"
    if value < t.high:
        return "high"
    if value < t.warning:
        return "warning"
    return "normal"


def draw_panel(
    panel: Panel,
    top: float,
    points: Sequence[TimelinePoint],
    t: ThresholdSettings | None,
    x: Callable[[datetime], float],
    lay: Layout,
) -> list[str]:
    height = lay.panel_h
    plot_w = lay.width - lay.left - lay.right
    mine = [p for p in points if p.analyte in panel.analytes and p.canonical is not None]
    values = [p.canonical for p in mine if p.canonical is not None]
    lo = min([panel.floor, *values]) if values else panel.floor
    hi = max([panel.ceiling, *values]) if values else panel.ceiling
    if t is not None:
        lo = min(lo, t.critical - (hi - lo) * 0.1)
    pad = (hi - lo) * 0.05
    lo, hi = max(lo - pad, 0.0), hi + pad
    bottom = top + height

    def y(value: float) -> float:
        return bottom - height * (value - lo) / (hi - lo)

    right = lay.left + plot_w
    title = panel.short_title if lay.short_titles else panel.title
    unit = f" ({panel.unit})"
    title = fit_text(title, lay.width - 2 * lay.pad, lay.font + 2, keep=unit)
    out = [
        f'<text x="{lay.pad}" y="{top - 26}" font-weight="700" font-size="{lay.font + 2}" '
        f'fill="#1a202c" {HALO}>{esc(title)}<tspan font-weight="400" fill="{COLOURS["axis"]}">'
        f"{esc(unit)}</tspan></text>",
        f'<rect x="{lay.left}" y="{top}" width="{plot_w}" height="{height}" fill="none" '
        f'stroke="{COLOURS["grid"]}"/>',
    ]
    if t is not None:
        # Shade below the paging threshold, darker below critical: the eye finds the danger.
        out.append(
            f'<rect x="{lay.left}" y="{y(t.high):.1f}" width="{plot_w}" '
            f'height="{bottom - y(t.high):.1f}" fill="{COLOURS["high"]}" opacity="0.08"/>'
            f'<rect x="{lay.left}" y="{y(t.critical):.1f}" width="{plot_w}" '
            f'height="{bottom - y(t.critical):.1f}" fill="{COLOURS["critical"]}" opacity="0.12"/>'
        )
        key = []
        for name, value, dash in (
            ("warning", t.warning, "6 4"),
            ("high", t.high, ""),
            ("critical", t.critical, ""),
        ):
            yy = y(value)
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            word = {"warning": "low", "high": "page", "critical": "critical"}[name]
            out.append(
                f'<line x1="{lay.left}" y1="{yy:.1f}" x2="{right}" y2="{yy:.1f}" '
                f'stroke="{COLOURS[name]}" stroke-width="1.5"{dash_attr}/>'
            )
            mark = "- -" if dash else "—"
            key.append(f'<tspan fill="{COLOURS[name]}">{mark} {esc(word)} {value:g}</tspan>')
        # The lines' key sits above the panel, never on the data: "page 2" names the line.
        out.append(f'<text x="{lay.pad}" y="{top - 8}" {HALO}>{"  ".join(key)}</text>')
    step = _nice_step((hi - lo) / 4)
    tick = (lo // step + 1) * step
    while tick < hi:
        yy = y(tick)
        out.append(
            f'<line x1="{lay.left - 4}" y1="{yy:.1f}" x2="{lay.left}" y2="{yy:.1f}" '
            f'stroke="{COLOURS["axis"]}"/><text x="{lay.left - 6}" y="{yy + 4:.1f}" '
            f'text-anchor="end" fill="{COLOURS["axis"]}">{tick:g}</text>'
        )
        tick = round(tick + step, 6)
    for analyte in panel.analytes:
        series = [p for p in mine if p.analyte == analyte]
        if len(series) > 1:
            path = " ".join(f"{x(p.observed_at):.1f},{y(p.canonical or 0):.1f}" for p in series)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{COLOURS["normal"]}" '
                f'stroke-width="1.5" opacity="0.6"/>'
            )
        for p in series:
            value = p.canonical or 0.0
            colour = COLOURS[severity_of(value, t)]
            cx, cy = x(p.observed_at), y(value)
            shown = f"{p.comparator}{p.value:g} {p.unit}" if p.value is not None else ""
            tip = f"<title>{esc(analyte)} {esc(shown)} at {esc(p.observed_at.isoformat())}</title>"
            if analyte == "corrected_calcium":
                out.append(
                    f'<path d="M{cx:.1f},{cy - 6:.1f} l6,6 l-6,6 l-6,-6 z" fill="{colour}">'
                    f"{tip}</path>"
                )
            else:
                fill = "#fff" if p.comparator.startswith("<") else colour
                out.append(
                    f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{fill}" '
                    f'stroke="{colour}" stroke-width="2">{tip}</circle>'
                )
    out.extend(_value_labels(mine, t, x, y, lay))
    if not mine:
        out.append(
            f'<text x="{lay.left + plot_w / 2:.1f}" y="{top + height / 2:.1f}" '
            f'text-anchor="middle" fill="{COLOURS["axis"]}">no results in this period</text>'
        )
    return out


def _value_labels(
    mine: Sequence[TimelinePoint],
    t: ThresholdSettings | None,
    x: Callable[[datetime], float],
    y: Callable[[float], float],
    lay: Layout,
) -> list[str]:
    """The worst and the latest paging-range value of the panel, written beside their points
    (every value of a dense series would overprint; the table below lists them all)."""
    paging = [p for p in mine if severity_of(p.canonical or 0.0, t) in ("high", "critical")]
    if not paging:
        return []
    worst = min(paging, key=lambda p: (p.canonical or 0.0, p.observed_at))
    latest = max(paging, key=lambda p: p.observed_at)
    out: list[str] = []
    taken: list[Box] = []
    for p in [worst] if latest is worst else [worst, latest]:
        value = p.canonical or 0.0
        text = f"{value:.2g}"
        w = text_width(text, lay.font, bold=True)
        cx, cy = x(p.observed_at), y(value)
        x0 = cx + 8 if cx + 8 + w <= lay.width - lay.pad else cx - 8 - w
        box = Box(x0, cy - lay.font * 0.6, x0 + w, cy + lay.font * 0.6)
        if any(box.intersects(b) for b in taken):
            continue
        taken.append(box)
        colour = COLOURS[severity_of(value, t)]
        out.append(
            f'<text x="{x0:.1f}" y="{cy + lay.font * 0.35:.1f}" fill="{colour}" '
            f'font-weight="700" {HALO}>{text}</text>'
        )
    return out


def _nice_step(raw: float) -> float:
    for step in (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50):
        if step >= raw:
            return step
    return 100.0
