"""Headless Chromium against a real uvicorn server (the daemon's API component) on a free port.

Skips when Chromium or its driver is absent (CI installs them:
``apt-get install -y chromium chromium-driver``). Keeps a screenshot of the timeline page in
``artifacts/timeline.png`` at the repository root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from service.db.models import Alert
from service.notify.ack_links import ack_link
from tests.api.story import ACTOR, MRN, TOKEN, Story, build_story
from tests.api.web.chromium import CHROMIUM, DRIVER, RunningServer, chrome

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"

# Selenium is a test-only extra: without it the whole module is skipped, not failed.
By = pytest.importorskip("selenium.webdriver.common.by").By
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait
pytestmark = [
    pytest.mark.slow,  # drives a real Chromium
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="needs Debian packages chromium and chromium-driver"
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chrome(tmp_path / "chromium-profile", window="820,1400") as driver:
        yield driver


@pytest.fixture
def live(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Story, str]]:
    story = build_story(sqlite_url, tmp_path)
    try:
        with RunningServer(story.context) as base_url:
            yield story, base_url
    finally:
        story.app.close()


def test_page_link_to_acknowledged_alert(browser, live) -> None:  # type: ignore[no-untyped-def]
    story, base_url = live
    alert = story.alert()
    # The link exactly as a page carries it, pointed at this server.
    link = ack_link(story.settings, alert.public_id, story.now)
    link = link.replace(story.settings.api.base_url, base_url)
    assert MRN not in link
    browser.get(link)
    # A high alert's link asks for sign-in first, then comes back to the ack page.
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda b: "/ack/" in b.current_url)
    assert "low phosphate" in browser.find_element(By.TAG_NAME, "h1").text.lower()
    browser.find_element(By.CSS_SELECTOR, "input[name=action][value=repeat-labs]").click()
    browser.find_element(By.ID, "note").send_keys("Phos, Ca, Mg, PTH at 06:00")
    browser.find_element(By.CSS_SELECTOR, "#ack-form button[type=submit]").click()
    assert browser.find_element(By.ID, "ack-done").text == "Acknowledged"
    with Session(story.app.engine) as session:
        row = session.get(Alert, alert.id)
        assert row is not None
        assert (row.acked_by, row.ack_action) == (ACTOR, "repeat-labs")
        assert row.ack_note == "Phos, Ca, Mg, PTH at 06:00"


def test_timeline_screenshot(browser, live) -> None:  # type: ignore[no-untyped-def]
    story, base_url = live
    browser.get(f"{base_url}/worklist")
    assert "/login" in browser.current_url  # signed out: sent to sign in
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/worklist"))
    browser.find_element(By.CSS_SELECTOR, "a[href^='/patients/']").click()
    WebDriverWait(browser, 30).until(lambda b: "/patients/" in b.current_url)
    assert MRN not in browser.current_url
    chart = browser.find_element(By.ID, "timeline-chart")
    text = chart.text
    for words in ("Phosphate", "Calcium", "IV iron", "Antiresorptive", "page 2", "critical 1"):
        assert words in text, words
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "timeline.png"
    assert chart.screenshot(str(target))
    browser.save_screenshot(str(ARTIFACTS / "timeline-page.png"))
    assert target.stat().st_size > 10_000
