"""The timeline and worklist as a phone (390x844 CSS px at 3x) and a desktop (1280x800) show
them, in a real headless Chromium against a real server: facts measured in the rendered page
(text sizes, label boxes, overflow), never pixels. Screenshots are kept under ``tmp_path``.

The patient is ``phone_story``'s: four dose labels within two weeks, missed checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.api.context import ApiContext
from service.bootstrap import App
from tests.api.story import TOKEN
from tests.api.web.chromium import CHROMIUM, DRIVER, RunningServer, chrome, emulate

pytest.importorskip("selenium.webdriver")
pytestmark = [
    pytest.mark.slow,  # drives a real Chromium
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="needs Debian packages chromium and chromium-driver"
    ),
]

PHONE = (390, 844, 3.0, True)
DESKTOP = (1280, 800, 1.0, False)
MIN_PX = 11.0

# Everything the assertions need, measured by the browser in one go.
MEASURE = """
const svg = [...document.querySelectorAll('#timeline-chart svg')]
  .find(s => s.checkVisibility());
const scale = svg.getScreenCTM().a;
const box = e => { const r = e.getBoundingClientRect();
  return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, height: r.height}; };
return {
  svgClass: svg.getAttribute('class'),
  texts: [...svg.querySelectorAll('text, tspan')].filter(t => t.textContent.trim()).map(t => ({
    text: t.textContent, cls: t.getAttribute('class') || '',
    px: parseFloat(getComputedStyle(t).fontSize) * scale, box: box(t)})),
  scrollWidth: document.scrollingElement.scrollWidth,
  innerWidth: window.innerWidth,
  tables: [...document.querySelectorAll('main table')].map(box),
  calcium: [...document.querySelectorAll('table.plan .calcium')].map(c => ({
    box: box(c), visible: c.checkVisibility(), text: c.textContent})),
  missed: [...document.querySelectorAll('table.plan tr.check-missed')].map(r => r.textContent),
};
"""


@pytest.fixture
def signed_in(phone_app: tuple[App, ApiContext], tmp_path: Path) -> Iterator[tuple[Any, str]]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _, context = phone_app
    with RunningServer(context) as base_url, chrome(tmp_path / "profile") as driver:
        driver.get(f"{base_url}/login?next=/worklist")
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        WebDriverWait(driver, 30).until(lambda b: b.current_url.endswith("/worklist"))
        yield driver, base_url


@pytest.mark.parametrize("device", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_timeline_reads_at_phone_and_desktop_size(
    signed_in: tuple[Any, str], device: tuple[int, int, float, bool], tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver, base_url = signed_in
    width, height, scale, mobile = device
    emulate(driver, width, height, scale, mobile=mobile)
    driver.get(f"{base_url}/worklist")
    driver.find_element(By.CSS_SELECTOR, "a[href^='/patients/']").click()
    driver.find_element(By.ID, "timeline-chart")
    page = driver.execute_script(MEASURE)
    name = "phone" if mobile else "desktop"
    _keep(driver, tmp_path / f"timeline-{name}.png")
    driver.find_element(By.ID, "timeline-chart").screenshot(str(tmp_path / f"chart-{name}.png"))

    assert page["innerWidth"] == width
    assert page["svgClass"] == ("chart-narrow" if mobile else "chart-wide")
    # Every chart text at least 11 CSS px as rendered, by font size and by its box.
    small = [
        (t["text"], round(t["px"], 1), round(t["box"]["height"], 1))
        for t in page["texts"]
        if t["px"] < MIN_PX or t["box"]["height"] < MIN_PX
    ]
    assert not small, small
    # Four dose labels, no two boxes intersecting.
    labels = [t for t in page["texts"] if t["cls"] == "dose-label"]
    assert len(labels) == 4, [t["text"] for t in labels]
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            assert not _intersect(a["box"], b["box"]), (a, b)
    # No sideways scrolling; every table, and its calcium column, inside the screen.
    assert page["scrollWidth"] <= width
    assert all(t["right"] <= width + 0.5 for t in page["tables"]), page["tables"]
    calcium = page["calcium"]
    assert calcium and all(c["visible"] and c["box"]["right"] <= width + 0.5 for c in calcium)
    # Honest range: the 90-day view says 90 days; the missed check shows no value.
    assert any("(90 days)" in t["text"] for t in page["texts"])
    assert page["missed"] and all("mg/dL" not in row for row in page["missed"])
    assert any("calcium not drawn" in row for row in page["missed"])


def test_worklist_fits_a_phone(signed_in: tuple[Any, str], tmp_path: Path) -> None:
    driver, base_url = signed_in
    emulate(driver, *PHONE[:3], mobile=True)
    driver.get(f"{base_url}/worklist")
    overflow = driver.execute_script(
        "return [document.scrollingElement.scrollWidth, window.innerWidth]"
    )
    _keep(driver, tmp_path / "worklist-phone.png")
    assert overflow[0] <= overflow[1] == PHONE[0]


def _intersect(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    )


def _keep(driver: Any, target: Path) -> None:
    """The whole page as a PNG (DevTools capture beyond the viewport)."""
    import base64

    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    target.write_bytes(base64.b64decode(shot["data"]))
    assert target.stat().st_size > 10_000
