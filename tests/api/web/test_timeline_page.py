"""The timeline page over the ASGI transport (no browser): honest ranges, missed checks without
values, both drawings of the chart. The browser-measured facts are in test_phone_timeline."""

from __future__ import annotations

import re

import httpx

from service.api import create_app
from service.api.context import ApiContext
from service.bootstrap import App
from tests.api.story import TOKEN


async def _timeline(context: ApiContext, query: str = "") -> str:
    transport = httpx.ASGITransport(app=create_app(context))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        await client.post("/login", data={"token": TOKEN, "next": "/worklist"})
        worklist = (await client.get("/worklist")).text
        ref = re.search(r'href="(/patients/\d+)"', worklist)
        assert ref is not None
        page = await client.get(ref[1] + query)
        assert page.status_code == 200
        return page.text


async def test_missed_checks_show_what_is_missing_and_no_value(
    phone_app: tuple[App, ApiContext],
) -> None:
    _, context = phone_app
    html = await _timeline(context)
    plan = html[html.index('<table class="plan">') : html.index("</table>", html.index("plan"))]
    rows = re.findall(r'<tr class="check check-(\S+)">(.*?)</tr>', plan, re.S)
    by_state = {}
    for state, row in rows:
        by_state.setdefault(state, []).append(row)
    # Day 7 and day 21: a phosphate was drawn, no calcium: missed, and no value shown.
    assert len(by_state["missed"]) == 2
    for row in by_state["missed"]:
        assert "calcium not drawn" in row and "mg/dL" not in row
    # The baseline had both: its values are shown.
    (baseline,) = by_state["done"]
    assert "3.4" in baseline and "9.3" in baseline


async def test_each_range_shows_exactly_its_days(phone_app: tuple[App, ApiContext]) -> None:
    _, context = phone_app
    for query, days in (("", 90), ("?days=30", 30), ("?days=365", 365)):
        html = await _timeline(context, query)
        assert html.count(f"({days} days)") == 2, days  # the wide and the narrow drawing
        assert 'class="chart-wide"' in html and 'class="chart-narrow"' in html
        # 30 days leave out the first iron dose, given 30 days (and a few seconds) ago.
        assert html.count('class="dose-label"') == (4 if days > 30 else 2) * 2
