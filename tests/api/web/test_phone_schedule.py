"""`/schedule` on a phone (390 CSS px) in a real headless Chromium against the real server:
no sideways scrolling, the tables inside the screen, text at least 11 px. Facts measured in
the rendered page, never pixels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.roster_state import NewOverride, add_override
from service.api.context import ApiContext, Readiness
from service.bootstrap import build_app
from service.notify.rosters import update_state
from tests.api.test_schedule_page import VIEWER_TOKEN, _settings
from tests.api.web.chromium import CHROMIUM, DRIVER, RunningServer, chrome, emulate
from tests.notify.helpers import write_routing

pytest.importorskip("selenium.webdriver")
pytestmark = [
    pytest.mark.slow,  # drives a real Chromium
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="needs Debian packages chromium and chromium-driver"
    ),
]

MEASURE = """
const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right}; };
return {
  scrollWidth: document.scrollingElement.scrollWidth,
  innerWidth: window.innerWidth,
  tables: [...document.querySelectorAll('main table')].map(box),
  cells: [...document.querySelectorAll('main td')].map(
    c => parseFloat(getComputedStyle(c).fontSize)),
  overrides: document.querySelectorAll('tr.segment.override').length,
};
"""


def test_schedule_fits_a_phone(sqlite_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    routing_file = write_routing(tmp_path / "routing.toml")
    now = datetime.now(UTC)
    app = build_app(_settings(sqlite_url, routing_file))
    routing = app.pipeline.delivery.paging.routing  # type: ignore[attr-defined]
    # A long reason: the table must wrap it, not scroll sideways.
    entry = NewOverride(
        "icu", 1, "icu-2", now + timedelta(hours=2), now + timedelta(days=2),
        reason="cover-for-the-attending-during-the-regional-transfer-conference-week",
    )  # fmt: skip
    update_state(routing_file, lambda s: add_override(s, routing, entry, now)[0])
    app.close()
    app = build_app(_settings(sqlite_url, routing_file))  # started with the override
    context = ApiContext(
        settings=app.settings,
        engine=app.engine,
        clinical=app.clinical,
        pipeline=app.pipeline,
        readiness=Readiness(),
    )
    try:
        with RunningServer(context) as base_url, chrome(tmp_path / "profile") as driver:
            emulate(driver, 390, 844, 3.0, mobile=True)
            driver.get(f"{base_url}/login?next=/schedule")
            driver.find_element(By.ID, "token").send_keys(VIEWER_TOKEN)
            driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
            WebDriverWait(driver, 30).until(lambda b: b.current_url.endswith("/schedule"))
            page = driver.execute_script(MEASURE)
    finally:
        app.close()
    assert page["overrides"] == 1
    assert page["innerWidth"] == 390 and page["scrollWidth"] <= 390
    assert page["tables"] and all(t["left"] >= 0 and t["right"] <= 390 for t in page["tables"])
    assert min(page["cells"]) >= 11.0
