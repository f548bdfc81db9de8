"""The patient timeline chart: phosphate and calcium over time, as one server-rendered SVG.

Read at a glance on a phone: one panel per mineral on a shared time axis, the zones below
the paging (``high``) and ``critical`` thresholds shaded red, the warning line dashed, each
IV iron dose a brown line with its risk window shaded across both panels, each antiresorptive
dose a purple line with its effect interval as a bar on top. Points below a threshold take
the threshold's colour. No script: the chart is plain SVG text escaped by ``html.escape``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.model import Exposure
from service.api.views.timeline import TimelinePoint
from service.runtime.settings import ThresholdSettings

WIDTH = 720
LEFT, RIGHT = 52, 64
PANEL_H = 190
TOP = 72  # room for the dose labels (two rows) and the antiresorptive bar
GAP = 34
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


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    analytes: tuple[str, ...]
    threshold_key: str
    floor: float  # y range always includes [floor, ceiling]
    ceiling: float


PANELS = (
    Panel("Phosphate", "mg/dL", ("phosphate",), "phosphate", 0.0, 5.0),
    Panel(
        "Calcium (corrected where reported)",
        "mg/dL",
        ("calcium", "corrected_calcium"),
        "calcium",
        6.0,
        11.0,
    ),
    Panel("Ionized calcium", "mmol/L", ("ionized_calcium",), "ionized_calcium", 0.7, 1.4),
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def time_range(
    points: Sequence[TimelinePoint], exposures: Sequence[Exposure], now: datetime, days: int
) -> tuple[datetime, datetime]:
    """The window shown: ``days`` up to now, or up to the latest event for a quiet patient."""
    moments = [p.observed_at for p in points] + [e.start for e in exposures]
    if not moments:
        return now - timedelta(days=days), now
    latest = max(moments)
    anchor = now if now - latest <= timedelta(days=days) else latest
    inside = [m for m in moments if m >= anchor - timedelta(days=days)]
    start = min(inside) if inside else anchor - timedelta(days=days)
    return start - timedelta(days=2), anchor + timedelta(days=2)


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


def render_chart(
    points: Sequence[TimelinePoint],
    exposures: Sequence[Exposure],
    thresholds: dict[str, ThresholdSettings],
    drug_names: dict[str, str],
    now: datetime,
    zone: ZoneInfo,
    days: int = 90,
) -> str:
    """The SVG document (a string safe to embed in HTML)."""
    t0, t1 = time_range(points, exposures, now, days)
    span = max((t1 - t0).total_seconds(), 1.0)
    plot_w = WIDTH - LEFT - RIGHT
    panels = [
        p
        for p in PANELS
        if p.analytes[0] != "ionized_calcium"
        or any(pt.analyte == "ionized_calcium" for pt in points)
    ]
    height = TOP + len(panels) * (PANEL_H + GAP) + 10

    def x(moment: datetime) -> float:
        clamped = min(max(moment, t0), t1)
        return LEFT + plot_w * (clamped - t0).total_seconds() / span

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="100%" role="img" aria-labelledby="chart-title" font-family="system-ui, '
        f'sans-serif" font-size="12">',
        '<title id="chart-title">Phosphate and calcium over time, with IV iron and '
        "antiresorptive doses</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
    ]
    bottom = TOP + len(panels) * (PANEL_H + GAP) - GAP
    # Exposures: iron risk windows shaded through every panel; antiresorptive bars on top.
    visible = [e for e in exposures if e.end >= t0 and e.start <= t1]
    for e in visible:
        if e.drug_class == "iv_iron":
            x0, x1 = x(e.start), x(e.end)
            out.append(
                f'<rect x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{bottom - TOP}" fill="{COLOURS["iron_window"]}" opacity="0.55"/>'
            )
    for e in visible:
        if e.drug_class == "antiresorptive":
            x0, x1 = x(e.start), x(e.end)
            out.append(
                f'<rect x="{x0:.1f}" y="{TOP - 36}" width="{max(x1 - x0, 2):.1f}" height="6" '
                f'fill="{COLOURS["antiresorptive"]}" opacity="0.35"/>'
            )
    for index, panel in enumerate(panels):
        top = TOP + index * (PANEL_H + GAP)
        out.extend(_panel(panel, top, points, thresholds.get(panel.threshold_key), x, plot_w))
    # Dose lines over the panels, labelled above them.
    label_rows: list[float] = []
    for e in sorted(visible, key=lambda e: e.start):
        if e.drug_class not in ("iv_iron", "antiresorptive") or not t0 <= e.start <= t1:
            continue
        colour = COLOURS["iron"] if e.drug_class == "iv_iron" else COLOURS["antiresorptive"]
        xd = x(e.start)
        tag = "IV iron" if e.drug_class == "iv_iron" else "Antiresorptive"
        name = drug_names.get(e.drug, e.drug)
        # Alternate label heights when doses are close, so labels do not overlap.
        row = (
            0 if not label_rows or xd - label_rows[-1] > 150 else 1 - int(len(label_rows) % 2 == 1)
        )
        label_rows.append(xd)
        y_label = 16 + row * 14
        anchor = "end" if xd > WIDTH - RIGHT - 100 else "start"
        dx = -4 if anchor == "end" else 4
        out.append(
            f'<line x1="{xd:.1f}" y1="{y_label + 2}" x2="{xd:.1f}" y2="{bottom}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{xd + dx:.1f}" y="{y_label}" fill="{colour}" font-weight="600" '
            f'text-anchor="{anchor}">{_e(tag)}: {_e(name)} {_e(_day(e.start, zone))}</text>'
        )
    if t0 <= now <= t1:
        xn = x(now)
        out.append(
            f'<line x1="{xn:.1f}" y1="{TOP}" x2="{xn:.1f}" y2="{bottom}" stroke="#718096" '
            f'stroke-dasharray="2 3"/><text x="{xn - 3:.1f}" y="{bottom + 26}" '
            f'text-anchor="end" fill="#718096">now</text>'
        )
    out.extend(_time_axis(t0, t1, x, bottom, zone))
    out.append("</svg>")
    return "".join(out)


def _day(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%d %b")


def _panel(
    panel: Panel,
    top: float,
    points: Sequence[TimelinePoint],
    t: ThresholdSettings | None,
    x: object,
    plot_w: float,
) -> list[str]:
    assert callable(x)
    mine = [p for p in points if p.analyte in panel.analytes and p.canonical is not None]
    values = [p.canonical for p in mine if p.canonical is not None]
    lo = min([panel.floor, *values]) if values else panel.floor
    hi = max([panel.ceiling, *values]) if values else panel.ceiling
    if t is not None:
        lo = min(lo, t.critical - (hi - lo) * 0.1)
    pad = (hi - lo) * 0.05
    lo, hi = max(lo - pad, 0.0), hi + pad
    bottom = top + PANEL_H

    def y(value: float) -> float:
        return bottom - PANEL_H * (value - lo) / (hi - lo)

    right = LEFT + plot_w
    out = [
        f'<text x="{LEFT}" y="{top - 6}" font-weight="700" font-size="14" fill="#1a202c">'
        f'{_e(panel.title)} <tspan font-weight="400" fill="{COLOURS["axis"]}">'
        f"({_e(panel.unit)})</tspan></text>",
        f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{PANEL_H}" fill="none" '
        f'stroke="{COLOURS["grid"]}"/>',
    ]
    if t is not None:
        # Shade below the paging threshold, darker below critical: the eye finds the danger.
        out.append(
            f'<rect x="{LEFT}" y="{y(t.high):.1f}" width="{plot_w}" '
            f'height="{bottom - y(t.high):.1f}" fill="{COLOURS["high"]}" opacity="0.08"/>'
        )
        out.append(
            f'<rect x="{LEFT}" y="{y(t.critical):.1f}" width="{plot_w}" '
            f'height="{bottom - y(t.critical):.1f}" fill="{COLOURS["critical"]}" opacity="0.12"/>'
        )
        for name, value, dash in (
            ("warning", t.warning, "6 4"),
            ("high", t.high, ""),
            ("critical", t.critical, ""),
        ):
            yy = y(value)
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            label = {"warning": "low", "high": "page", "critical": "critical"}[name]
            out.append(
                f'<line x1="{LEFT}" y1="{yy:.1f}" x2="{right}" y2="{yy:.1f}" '
                f'stroke="{COLOURS[name]}" stroke-width="1.5"{dash_attr}/>'
                f'<text x="{right + 4}" y="{yy + 4:.1f}" fill="{COLOURS[name]}">'
                f"{_e(label)} {value:g}</text>"
            )
    # y ticks
    step = _nice_step((hi - lo) / 4)
    tick = (lo // step + 1) * step
    while tick < hi:
        yy = y(tick)
        out.append(
            f'<line x1="{LEFT - 4}" y1="{yy:.1f}" x2="{LEFT}" y2="{yy:.1f}" '
            f'stroke="{COLOURS["axis"]}"/><text x="{LEFT - 6}" y="{yy + 4:.1f}" '
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
            tip = f"<title>{_e(analyte)} {_e(shown)} at {_e(p.observed_at.isoformat())}</title>"
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
            if severity_of(value, t) in ("high", "critical"):
                out.append(
                    f'<text x="{cx + 7:.1f}" y="{cy + 4:.1f}" fill="{colour}" '
                    f'font-weight="700">{value:.2g}</text>'
                )
    if not mine:
        out.append(
            f'<text x="{LEFT + plot_w / 2:.1f}" y="{top + PANEL_H / 2:.1f}" '
            f'text-anchor="middle" fill="{COLOURS["axis"]}">no results in this period</text>'
        )
    return out


def _nice_step(raw: float) -> float:
    for step in (0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50):
        if step >= raw:
            return step
    return 100.0


def _time_axis(t0: datetime, t1: datetime, x: object, bottom: float, zone: ZoneInfo) -> list[str]:
    assert callable(x)
    days = max((t1 - t0).days, 1)
    step = next(s for s in (1, 2, 7, 14, 28, 56, 91, 182, 365, 10_000) if days / s <= 8)
    local0 = t0.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    tick = local0 + timedelta(days=1)
    out: list[str] = []
    while tick <= t1:
        xt = x(tick)
        out.append(
            f'<line x1="{xt:.1f}" y1="{bottom}" x2="{xt:.1f}" y2="{bottom + 5}" '
            f'stroke="{COLOURS["axis"]}"/><text x="{xt:.1f}" y="{bottom + 18}" '
            f'text-anchor="middle" fill="{COLOURS["axis"]}">{_e(tick.strftime("%d %b"))}</text>'
        )
        tick += timedelta(days=step)
    return out
