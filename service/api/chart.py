"""The patient timeline chart: phosphate and calcium over time, as server-rendered SVG.

Read at a glance on a phone: one panel per mineral on a shared time axis, the zones below
the paging (``high``) and ``critical`` thresholds shaded red, the warning line dashed, each
IV iron dose a brown line with its risk window shaded across the panels, each antiresorptive
dose a purple line with its effect interval as a bar on top. Points below a threshold take
the threshold's colour.

Two drawings of the same data, one ``LAYOUT`` each: a wide one for desktops and a narrow one
(380 units across, taller panels per width) that the stylesheet shows below 760 px instead.
Each is drawn for the width it is shown at, so its 13-unit text renders at 11-14 CSS px
rather than being scaled down with the picture. The page picks one by CSS media query; no
script anywhere (the pages' Content-Security-Policy forbids it).

Why hand-written SVG rather than a plotting library: the libraries that render without
JavaScript (matplotlib's SVG backend and the like) size text in points on a fixed figure,
place annotations where they are told (their overlaps remain ours to solve:
``chart_layout.place_labels``), emit glyph outlines or font names without the ``<title>``
and ``role`` that make the chart accessible, and would add numpy and a ~40 MB wheel to a
service whose chart is a few lines and rectangles. Plotly, Vega and Bokeh draw in the
browser with JavaScript. The geometry that matters (label placement, ticks, text widths) is
pure and tested in ``service.api.chart_layout``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerts.model import Exposure
from service.api.chart_layout import (
    Box,
    dose_groups,
    fit_text,
    place_labels,
    text_width,
    time_ticks,
)
from service.api.chart_panel import (
    COLOURS,
    HALO,
    PANEL_GAP,
    PANELS,
    TITLE_SPACE,
    Layout,
    draw_panel,
    esc,
)
from service.api.views.timeline import TimelinePoint
from service.runtime.settings import ThresholdSettings

WIDE = Layout("wide", 720, 48, 16, 190)
NARROW = Layout("narrow", 380, 38, 10, 150, short_titles=True)
LAYOUTS = (WIDE, NARROW)
HEADER = 26  # each line of text at the very top (the range shown)
MAX_LABELS = 6  # dose labels kept, the latest; older doses keep their lines
GROUP_WITHIN = timedelta(days=14)  # a course of one drug shares one label


def time_range(
    points: Sequence[TimelinePoint], exposures: Sequence[Exposure], now: datetime, days: int
) -> tuple[datetime, datetime]:
    """The window shown: exactly ``days`` days up to now, or up to the latest event when the
    patient has had none in the last ``days`` days (the chart then says so)."""
    moments = [p.observed_at for p in points] + [e.start for e in exposures]
    past = [m for m in moments if m <= now]
    anchor = now
    if past and now - max(past) > timedelta(days=days):
        anchor = max(past)
    return anchor - timedelta(days=days), anchor


def _day(moment: datetime, zone: ZoneInfo, fmt: str = "%d %b") -> str:
    return moment.astimezone(zone).strftime(fmt)


def render_chart(
    points: Sequence[TimelinePoint],
    exposures: Sequence[Exposure],
    thresholds: dict[str, ThresholdSettings],
    drug_names: dict[str, str],
    now: datetime,
    zone: ZoneInfo,
    days: int = 90,
) -> str:
    """Both drawings (wide, then narrow), safe to embed in HTML; CSS shows one."""
    return "".join(
        render_svg(layout, points, exposures, thresholds, drug_names, now, zone, days)
        for layout in LAYOUTS
    )


def render_svg(
    layout: Layout,
    points: Sequence[TimelinePoint],
    exposures: Sequence[Exposure],
    thresholds: dict[str, ThresholdSettings],
    drug_names: dict[str, str],
    now: datetime,
    zone: ZoneInfo,
    days: int,
) -> str:
    """One drawing of the chart for ``layout``."""
    lay = layout
    t0, t1 = time_range(points, exposures, now, days)
    span = max((t1 - t0).total_seconds(), 1.0)
    plot_w = lay.width - lay.left - lay.right
    right = lay.left + plot_w
    panels = [
        p
        for p in PANELS
        if p.analytes[0] != "ionized_calcium"
        or any(pt.analyte == "ionized_calcium" for pt in points)
    ]

    def x(moment: datetime) -> float:
        clamped = min(max(moment, t0), t1)
        return lay.left + plot_w * (clamped - t0).total_seconds() / span

    visible = [e for e in exposures if e.end >= t0 and e.start <= t1]
    doses = sorted(
        (
            e
            for e in visible
            if e.drug_class in ("iv_iron", "antiresorptive") and t0 <= e.start <= t1
        ),
        key=lambda e: e.start,
    )
    # Dose labels: as many rows as the doses need, stacked above the panels.
    groups, unlabelled = dose_groups(
        [(e.start, e.drug) for e in doses], within=GROUP_WITHIN, keep=MAX_LABELS
    )
    row_h = round(lay.font * 1.5)
    texts = [_dose_text([doses[i] for i in g], drug_names, zone, lay) for g in groups]
    header = [_range_text(t0, t1, now, days, zone, lay)]
    if unlabelled:
        header.append(
            fit_text(
                f"{unlabelled} earlier doses: see the table", lay.width - 2 * lay.pad, lay.font
            )
        )
    first_band = len(header) * HEADER + 6
    placed = place_labels(
        [
            (x(doses[g[0]].start), text_width(t, lay.font))
            for g, t in zip(groups, texts, strict=True)
        ],
        left=lay.pad,
        right=lay.width - lay.pad,
        bottom=0.0,
        row_height=row_h,
        size=lay.font,
    )
    rows = max((p.row for p in placed), default=-1) + 1
    placed = [p.shifted(first_band + rows * row_h) for p in placed]
    bar_y = first_band + rows * row_h + 6
    top = bar_y + 10 + TITLE_SPACE
    tops = [top + i * (lay.panel_h + TITLE_SPACE + PANEL_GAP) for i in range(len(panels))]
    bottom = tops[-1] + lay.panel_h
    height = bottom + 34
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-{lay.name}" '
        f'viewBox="0 0 {lay.width} {height}" width="100%" role="img" '
        f'aria-labelledby="chart-title-{lay.name}" font-family="system-ui, sans-serif" '
        f'font-size="{lay.font}">',
        f'<title id="chart-title-{lay.name}">Phosphate and calcium over time, with IV iron and '
        "antiresorptive doses</title>",
        f'<rect x="0" y="0" width="{lay.width}" height="{height}" fill="#fff"/>',
    ]
    out.extend(
        f'<text x="{lay.pad}" y="{(n + 1) * HEADER - 8}" fill="{COLOURS["axis"]}">'
        f"{esc(line)}</text>"
        for n, line in enumerate(header)
    )
    span_top = tops[0] - TITLE_SPACE + 4
    for e in visible:
        x0, x1 = x(e.start), x(e.end)
        if e.drug_class == "iv_iron":  # shaded on the plots, not under the panel titles
            out.extend(
                f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{lay.panel_h}" fill="{COLOURS["iron_window"]}" opacity="0.7"/>'
                for top in tops
            )
        elif e.drug_class == "antiresorptive":
            out.append(
                f'<rect x="{x0:.1f}" y="{bar_y}" width="{max(x1 - x0, 2):.1f}" height="6" '
                f'fill="{COLOURS["antiresorptive"]}" opacity="0.35"/>'
            )
    # Dose lines under the panels' points and titles, labels last: text with a white halo
    # stays readable where a line crosses it.
    line_top = {i: p.box.y1 for g, p in zip(groups, placed, strict=True) for i in g}
    for i, e in enumerate(doses):
        out.append(
            f'<line x1="{x(e.start):.1f}" y1="{line_top.get(i, span_top):.1f}" '
            f'x2="{x(e.start):.1f}" y2="{bottom}" stroke="{_dose_colour(e)}" stroke-width="2"/>'
        )
    for panel, panel_top in zip(panels, tops, strict=True):
        out.extend(
            draw_panel(panel, panel_top, points, thresholds.get(panel.threshold_key), x, lay)
        )
    for g, p, text in zip(groups, placed, texts, strict=True):
        out.append(
            f'<text class="dose-label" x="{p.x:.1f}" y="{p.baseline:.1f}" '
            f'fill="{_dose_colour(doses[g[0]])}" {HALO}>{esc(text)}</text>'
        )
    out.extend(_time_axis(t0, t1, now, x, (span_top, bottom), zone, lay, right))
    out.append("</svg>")
    return "".join(out)


def _dose_colour(e: Exposure) -> str:
    return COLOURS["iron"] if e.drug_class == "iv_iron" else COLOURS["antiresorptive"]


def _dose_text(
    group: Sequence[Exposure], names: dict[str, str], zone: ZoneInfo, lay: Layout
) -> str:
    """``IV iron: <drug> 02 Mar``, or ``IV iron: <drug> ×3 02 Mar–16 Mar`` for a course."""
    first, last = group[0], group[-1]
    tag = "IV iron: " if first.drug_class == "iv_iron" else "Antiresorptive: "
    date = f" {_day(first.start, zone)}"
    if len(group) > 1:
        date = f" ×{len(group)}{date}–{_day(last.start, zone)}"
    room = lay.width - 2 * lay.pad
    name = fit_text(names.get(first.drug, first.drug), room, lay.font, keep=tag + date)
    return f"{tag}{name}{date}"


def _range_text(
    t0: datetime, t1: datetime, now: datetime, days: int, zone: ZoneInfo, lay: Layout
) -> str:
    text = f"{_day(t0, zone, '%d %b %Y')} – {_day(t1, zone, '%d %b %Y')} ({days} days)"
    if t1 < now:
        text += ", to the last entry"
    return fit_text(text, lay.width - 2 * lay.pad, lay.font)


def _time_axis(
    t0: datetime,
    t1: datetime,
    now: datetime,
    x: Callable[[datetime], float],
    vertical: tuple[float, float],
    zone: ZoneInfo,
    lay: Layout,
    right: float,
) -> list[str]:
    """Date ticks on real local midnights, and ``now`` at its place; a tick label that would
    touch the ``now`` label or the other ticks' is left out, the tick mark stays."""
    label_w = text_width("28 Sep", lay.font)
    plot_w = right - lay.left
    ticks = time_ticks(t0, t1, zone, int(plot_w // (label_w + 14)))
    top, bottom = vertical
    baseline = bottom + 20
    out: list[str] = []
    taken: list[Box] = []
    if t0 <= now <= t1:
        xn = x(now)
        w = text_width("now", lay.font, bold=True)
        x0 = min(xn - w / 2, lay.width - lay.pad - w)
        taken.append(Box(x0 - 6, baseline - lay.font, x0 + w + 6, baseline + 4))
        out.append(
            f'<line x1="{xn:.1f}" y1="{top}" x2="{xn:.1f}" y2="{bottom + 5}" '
            f'stroke="#718096" stroke-dasharray="2 3"/><text x="{x0:.1f}" y="{baseline}" '
            f'fill="#718096" font-weight="700">now</text>'
        )
    for tick in ticks:
        xt = x(tick)
        out.append(
            f'<line x1="{xt:.1f}" y1="{bottom}" x2="{xt:.1f}" y2="{bottom + 5}" '
            f'stroke="{COLOURS["axis"]}"/>'
        )
        text = tick.strftime("%d %b").lstrip("0")
        w = text_width(text, lay.font)
        x0 = min(max(xt - w / 2, lay.pad), lay.width - lay.pad - w)
        box = Box(x0 - 4, baseline - lay.font, x0 + w + 4, baseline + 4)
        if any(box.intersects(b) for b in taken):
            continue
        taken.append(box)
        out.append(f'<text x="{x0:.1f}" y="{baseline}" fill="{COLOURS["axis"]}">{esc(text)}</text>')
    return out
