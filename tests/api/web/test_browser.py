"""Headless Chromium against a real uvicorn server (the daemon's API component) on a free port.

Skips when Chromium or its driver is absent (CI installs them:
``apt-get install -y chromium chromium-driver``). Keeps a screenshot of the timeline page in
``artifacts/timeline.png`` at the repository root.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from service.api.server import ApiServer
from service.db.models import Alert
from service.notify.ack_links import ack_link
from tests.api.story import ACTOR, MRN, TOKEN, Story, build_story

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"

# Selenium is a test-only extra: without it the whole module is skipped, not failed.
webdriver = pytest.importorskip("selenium.webdriver")
By = pytest.importorskip("selenium.webdriver.common.by").By
ChromeOptions = pytest.importorskip("selenium.webdriver.chrome.options").Options
ChromeService = pytest.importorskip("selenium.webdriver.chrome.service").Service
WebDriverWait = pytest.importorskip("selenium.webdriver.support.ui").WebDriverWait
pytestmark = [
    pytest.mark.slow,  # drives a real Chromium
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER), reason="needs Debian packages chromium and chromium-driver"
    ),
]


class RunningServer:
    """The ApiServer component in its own thread and event loop, stopped like the daemon."""

    def __init__(self, story: Story) -> None:
        self.server = ApiServer(story.context, "127.0.0.1", 0)
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop = asyncio.Event()
            await self.server.run(self.stop)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # reported by the fixture
            self.error = exc

    def __enter__(self) -> str:
        self.thread.start()
        for _ in range(200):
            if self.server.port or self.error:
                break
            threading.Event().wait(0.02)
        assert self.server.port, f"server did not start: {self.error!r}"
        return f"http://127.0.0.1:{self.server.port}"

    def __exit__(self, *exc: object) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    options = ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=820,1400",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=ChromeService(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    # Elements may appear after a navigation returns on a loaded CI machine: wait for them.
    driver.implicitly_wait(15)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def live(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[Story, str]]:
    story = build_story(sqlite_url, tmp_path)
    try:
        with RunningServer(story) as base_url:
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
