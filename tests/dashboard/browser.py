"""Driving the dashboard in headless Chromium (Debian's ``chromium`` and ``chromium-driver``) with selenium.

Shared by the browser tests and by ``python -m tests.dashboard.screenshots``. Waiting is on the page's own
signal (``<body data-ready>``, set once its data is written and its charts drawn), never on a sleep.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 900)
READY_TIMEOUT_SECONDS = 30


def find_browser() -> tuple[str, str] | None:
    """(the Chromium binary, chromedriver), or None when either is missing."""
    binary = next((found for name in CHROMIUM_CANDIDATES if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    return (binary, driver) if binary and driver else None


def start_chrome(binary: str, driver: str) -> webdriver.Chrome:
    """A headless Chromium, 1280×900, whose console messages can be read back (``browser`` log)."""
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    options.binary_location = binary
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


@dataclass
class Dashboard:
    """One browser on one dashboard; remembers whose key it is signed in with, to sign in once per key."""

    driver: webdriver.Chrome
    base_url: str
    signed_in_with: str | None = None
    console: list[dict[str, Any]] = field(default_factory=list)

    def sign_in(self, key: str) -> None:
        """Sign in through the form (the key typed into it, as a person would), unless already signed in."""
        if self.signed_in_with == key:
            return
        self.driver.get(f"{self.base_url}/dashboard/login")
        field_ = self.driver.find_element(By.ID, "key")
        field_.clear()
        field_.send_keys(key)
        self.driver.find_element(
            By.CSS_SELECTOR, "form[action='/dashboard/login'] button[type=submit]"
        ).click()
        self.wait_ready()
        self.signed_in_with = key

    def open(self, path: str, *, data: bool = True) -> None:
        """Open ``path``; for a dashboard page (``data``), wait until its data is written and charts drawn."""
        self.driver.get(f"{self.base_url}{path}")
        if data:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Wait for the page's signal that its data call finished (``true``, or ``error``) and it is drawn."""
        WebDriverWait(self.driver, READY_TIMEOUT_SECONDS).until(
            lambda d: d.execute_script("return document.body.getAttribute('data-ready')") is not None
        )

    def read_console(self) -> list[dict[str, Any]]:
        """The console messages since the last read (also kept in ``console``)."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        self.console += entries
        return entries

    def screenshot(self, path: Path) -> Path:
        """The whole page (the window grown to its height, then put back) as a PNG."""
        path.parent.mkdir(parents=True, exist_ok=True)
        height = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(WINDOW[0], min(max(height, WINDOW[1]), 8000))
        try:
            self.driver.save_screenshot(str(path))
        finally:
            self.driver.set_window_size(*WINDOW)
        return path

    def plotted(self) -> dict[str, list[dict[str, Any]]]:
        """Each drawn chart's traces as plotly holds them: chart id -> [{type, x, y, z}]."""
        result: dict[str, list[dict[str, Any]]] = self.driver.execute_script(
            """
            const found = {};
            document.querySelectorAll('.js-plotly-plot').forEach(gd => {
              found[gd.dataset.chartId] = gd.data.map(t => ({
                type: t.type, orientation: t.orientation || 'v', x: t.x, y: t.y, z: t.z || null,
                connectgaps: t.connectgaps === undefined ? null : t.connectgaps,
              }));
            });
            return found;
            """
        )
        return result

    def paint_times(self) -> dict[str, float]:
        entries = self.driver.execute_script(
            "return performance.getEntriesByType('paint').map(e => [e.name, e.startTime])"
        )
        return {str(name): float(start) for name, start in entries}

    def urls_on_page(self) -> list[str]:
        """Every URL the page holds: links, form targets, scripts, stylesheets, and its own address."""
        found: list[str] = self.driver.execute_script(
            """
            const urls = [location.href];
            document.querySelectorAll('a[href]').forEach(a => urls.push(a.href));
            document.querySelectorAll('form[action]').forEach(f => urls.push(f.action));
            document.querySelectorAll('script[src]').forEach(s => urls.push(s.src));
            document.querySelectorAll('link[href]').forEach(l => urls.push(l.href));
            if (document.body.dataset.dataUrl) urls.push(document.body.dataset.dataUrl);
            return urls;
            """
        )
        return found
