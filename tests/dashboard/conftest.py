"""One headless Chromium per test session on the served API, and where the browser tests leave their
screenshots (``test-artifacts/dashboard/`` at the repository's root, ignored by git)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.browser import Dashboard, find_browser, start_chrome

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture
def web(api: httpx.Client) -> Iterator[httpx.Client]:
    """A client of the served API with a cookie jar of its own and no API key: what a browser sends."""
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def dashboard(api: httpx.Client) -> Iterator[Dashboard]:
    """A browser on the served API's dashboard (signed in with nobody yet)."""
    found = find_browser()
    if found is None:
        reason = "the browser tests need chromium and chromedriver (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    driver = start_chrome(*found)
    try:
        yield Dashboard(driver=driver, base_url=str(api.base_url).rstrip("/"))
    finally:
        driver.quit()
