"""Headless Chromium (Selenium) against the daemon's API component on a free port.

Shared by the browser tests; ``RunningServer`` also by the security tests that need a real
server on a socket. Chromium and chromedriver come from Debian (``scripts/ci-services``
installs them); the tests that use this skip when either is absent.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.api.context import ApiContext
from service.api.server import ApiServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


class RunningServer:
    """The ApiServer component in its own thread and event loop, stopped like the daemon."""

    def __init__(self, context: ApiContext) -> None:
        self.server = ApiServer(context, "127.0.0.1", 0)
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
        except BaseException as exc:  # reported by __enter__
            self.error = exc

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30  # a loaded CI machine starts it slowly
        while not (self.server.port or self.error) and time.monotonic() < deadline:
            threading.Event().wait(0.02)
        assert self.server.port, f"server did not start: {self.error!r}"
        return f"http://127.0.0.1:{self.server.port}"

    @property
    def address(self) -> tuple[str, int]:
        assert self.server.port is not None
        return ("127.0.0.1", self.server.port)

    def __exit__(self, *exc: object) -> None:
        if self.stop is not None:
            self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)  # requests in flight (a large body) end first
        assert not self.thread.is_alive()


@contextmanager
def chrome(profile: Path, window: str = "1280,800") -> Iterator[Any]:
    """A headless Chromium session with its own profile directory, ``window`` (width,height)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
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
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={window}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    # Elements may appear after a navigation returns on a loaded CI machine: wait for them.
    driver.implicitly_wait(15)
    try:
        yield driver
    finally:
        driver.quit()


def emulate(driver: Any, width: int, height: int, scale: float, *, mobile: bool) -> None:
    """Make the page see a device of this CSS size and pixel ratio (DevTools emulation)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
    )
