"""The chart's pure geometry: dose labels never overlap, honest ranges, real-date ticks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from alerts.model import Exposure
from service.api.chart import NARROW, WIDE, render_chart, time_range
from service.api.chart_layout import (
    Box,
    PlacedLabel,
    crossings,
    dose_groups,
    fit_text,
    place_labels,
    text_width,
    time_ticks,
)
from service.api.views.timeline import TimelinePoint
from service.runtime.settings import load_settings

ZONE = ZoneInfo("Europe/London")
NOW = datetime(2026, 4, 20, 9, 30, tzinfo=UTC)

# A dose set: x positions on the plot and label widths, as the chart asks for them.
doses = st.lists(
    st.tuples(st.floats(0, 380, allow_nan=False), st.floats(1, 360, allow_nan=False)),
    max_size=14,
)


@given(doses, st.sampled_from([(6.0, 374.0), (6.0, 714.0)]))
@example([(100.0, 250.0), (101.0, 240.0)], (6.0, 374.0))  # iron and denosumab one day apart
@example([(370.0, 300.0), (5.0, 300.0), (190.0, 300.0)], (6.0, 374.0))  # both edges, middle
@example([(0.0, 1.0)], (6.0, 374.0))  # a dose left of the margin: its label still inside
def test_dose_labels_never_overlap(
    requests: list[tuple[float, float]], bounds: tuple[float, float]
) -> None:
    left, right = bounds
    requests = [(x, min(w, right - left)) for x, w in requests]
    placed = place_labels(
        requests, left=left, right=right, bottom=200.0, row_height=19.0, size=13.0
    )
    assert [p.index for p in placed] == list(range(len(requests)))
    for i, a in enumerate(placed):
        # Inside the drawing, as wide as asked.
        assert left - 1e-6 <= a.box.x0 and a.box.x1 <= right + 1e-6
        assert abs((a.box.x1 - a.box.x0) - requests[i][1]) < 1e-6
        for b in placed[i + 1 :]:
            assert not a.box.intersects(b.box), (a, b)


def test_dose_lines_do_not_cross_labels_when_rows_allow() -> None:
    # The case on a desktop: denosumab, iron, zoledronic acid, iron within two weeks.
    requests = [(415.0, 320.0), (487.0, 350.0), (494.0, 370.0), (510.0, 350.0)]
    placed = place_labels(requests, left=6, right=714, bottom=200, row_height=19, size=13)
    assert crossings(placed, requests) == 0, placed
    assert len({p.row for p in placed}) == 4
    # Labels left of a dose near the right edge, and right of one near the left edge: their
    # lines need not cross either.
    requests = [(40.0, 200.0), (60.0, 200.0), (700.0, 250.0), (690.0, 250.0)]
    placed = place_labels(requests, left=6, right=714, bottom=200, row_height=19, size=13)
    assert crossings(placed, requests) == 0, placed


def test_crossings_counts_a_line_through_a_lower_label() -> None:
    low = PlacedLabel(0, 0, 10, 100, Box(10, 90, 200, 104))
    high = PlacedLabel(1, 1, 60, 80, Box(60, 70, 150, 84))
    assert crossings([low, high], [(5.0, 190.0), (100.0, 90.0)]) == 1  # x=100 runs through
    assert crossings([low, high], [(5.0, 190.0), (250.0, 90.0)]) == 0


def test_a_label_stays_beside_its_dose_when_it_fits() -> None:
    (start,), (end,) = (
        place_labels([(x, 100.0)], left=6, right=374, bottom=100, row_height=19, size=13)
        for x in (50.0, 330.0)
    )
    assert start.box.x0 == 54.0  # right of a dose near the left edge
    assert end.box.x1 == 326.0  # left of a dose near the right edge
    assert start.row == end.row == 0


def test_fit_text_shortens_a_long_drug_name_but_keeps_the_date() -> None:
    name = "Ferric carboxymaltose 750 mg/15 mL injection solution for infusion"
    short = fit_text(name, 368, 13, keep="IV iron:  02 Mar")
    assert short.endswith("…") and name.startswith(short[:-1])
    assert text_width("IV iron: " + short + " 02 Mar", 13) <= 368
    assert fit_text("Prolia", 368, 13) == "Prolia"  # short names untouched


def test_ninety_days_shows_ninety_days() -> None:
    # The old chart started two days before the first event: "90 d" showed about 4 weeks.
    exposure = Exposure(
        drug="ferric_carboxymaltose",
        drug_class="iv_iron",
        start=NOW - timedelta(days=20),
        end=NOW + timedelta(days=8),
        order_key="o1",
    )
    t0, t1 = time_range([], [exposure], NOW, 90)
    assert (t0, t1) == (NOW - timedelta(days=90), NOW)
    # A quiet patient: the 90 days up to their last entry, still 90 days long.
    old = NOW - timedelta(days=200)
    t0, t1 = time_range([_point(old, 2.0)], [], NOW, 90)
    assert (t0, t1) == (old - timedelta(days=90), old)


def test_ticks_are_real_local_midnights_within_the_range() -> None:
    for days, max_ticks in ((30, 5), (90, 4), (90, 9), (365, 4), (730, 5)):
        t0 = NOW - timedelta(days=days)
        ticks = time_ticks(t0, NOW, ZONE, max_ticks)
        assert 2 <= len(ticks) <= max_ticks, (days, max_ticks, ticks)
        for tick in ticks:
            assert t0 <= tick <= NOW
            assert (tick.hour, tick.minute) == (0, 0) and tick.tzinfo == ZONE
        assert ticks == sorted(set(ticks))
    # Across the spring DST change, weekly ticks stay on Monday midnights.
    weekly = time_ticks(datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 5, tzinfo=UTC), ZONE, 6)
    assert all(t.weekday() == 0 and t.hour == 0 for t in weekly)


def test_both_drawings_keep_text_at_least_13_units_and_inside_the_width() -> None:
    settings = load_settings()
    thresholds = dict(settings.clinical.thresholds)
    exposures = [
        Exposure("denosumab", "antiresorptive", NOW - timedelta(days=31), NOW, "o1"),
        Exposure("ferric_carboxymaltose", "iv_iron", NOW - timedelta(days=30), NOW, "o2"),
    ]
    points = [_point(NOW - timedelta(days=d), v) for d, v in ((29, 3.2), (9, 1.8), (2, 0.9))]
    svg = render_chart(points, exposures, thresholds, {}, NOW, ZONE, days=90)
    assert svg.count("<svg") == 2
    assert 'class="chart-wide"' in svg and 'class="chart-narrow"' in svg
    assert 'font-size="13"' in svg
    for size in ('font-size="8"', 'font-size="10"', 'font-size="11"', 'font-size="12"'):
        assert size not in svg
    assert f'viewBox="0 0 {NARROW.width} ' in svg and f'viewBox="0 0 {WIDE.width} ' in svg
    assert "page 2" in svg and "critical 1" in svg
    assert svg.count('class="dose-label"') == 4  # two doses, two drawings


def _point(at: datetime, value: float) -> TimelinePoint:
    return TimelinePoint("phosphate", at, value, "", "mg/dL", value, "F", "2.5-4.5")


def test_a_course_of_doses_shares_a_label_and_old_labels_give_way() -> None:
    day = timedelta(days=1)
    doses = [(NOW + n * 2 * day, "iron_sucrose") for n in range(5)]  # a course: one label
    doses += [(NOW + 30 * day, "denosumab"), (NOW + 31 * day, "iron_sucrose")]
    doses += [(NOW + 60 * day, "iron_sucrose")]  # 29 days after the last: a new label
    groups, left_out = dose_groups(doses, within=14 * day, keep=10)
    assert groups == [[0, 1, 2, 3, 4], [5], [6], [7]] and left_out == 0
    groups, left_out = dose_groups(doses, within=14 * day, keep=2)
    assert groups == [[6], [7]] and left_out == 6


def test_a_dialysis_year_of_iron_keeps_the_chart_bounded() -> None:
    # Iron sucrose three times a week for two years: lines for all, a handful of labels.
    settings = load_settings()
    exposures = [
        Exposure("iron_sucrose", "iv_iron", start, start + timedelta(days=28), f"o{n}")
        for n, start in enumerate(NOW - timedelta(days=2 * n + (n % 3)) for n in range(330))
    ]
    thresholds = dict(settings.clinical.thresholds)
    svg = render_chart([], exposures, thresholds, {}, NOW, ZONE, 730)
    assert svg.count('class="dose-label"') == 2 and "×330" in svg  # one course, one label
    assert svg.count('stroke="#8b4513"') == 2 * 330  # every dose keeps its line
    # Monthly doses for two years: the latest six labelled, the rest pointed to the table.
    monthly = [
        Exposure("iron_sucrose", "iv_iron", NOW - timedelta(days=30 * n), NOW, f"m{n}")
        for n in range(24)
    ]
    svg = render_chart([], monthly, thresholds, {}, NOW, ZONE, 730)
    assert svg.count('class="dose-label"') == 2 * 6
    assert "18 earlier doses: see the table" in svg
