"""The dashboard in headless Chromium on the served snapshot: every page draws its data with no console
error, the drawn points are the data's (and the warehouse's), the range picker changes them, a user's key
opens only its own pages, the key is in no URL, and the HTML paints well under a second.

One browser for the session (``dashboard`` fixture), signed in once per key; screenshots of each page are
left in test-artifacts/dashboard/.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from polar_api.dashboard.pages import PAGES
from tests.dashboard.browser import Dashboard
from tests.dashboard.conftest import ARTIFACTS
from tests.dashboard.support import nightly_ln_rmssd, page_json, present
from tests.support.served import Served

FIRST_PAINT_BUDGET_MS = 1000.0


def severe(entries: list[dict[str, Any]]) -> list[str]:
    return [str(entry["message"]) for entry in entries if entry["level"] == "SEVERE"]


def plotted_points(series: dict[str, Any]) -> int:
    """Points plotly holds for one trace: non-null values (cells, for a heatmap)."""
    if series["type"] == "heatmap":
        return present(series["z"])
    values = series["x"] if series["orientation"] == "h" else series["y"]
    return present(values)


def json_points(series: dict[str, Any]) -> int:
    return present(series["z"]) if series["kind"] == "heatmap" else present(series["y"])


def assert_no_key_in_urls(dashboard: Dashboard, *keys: str) -> None:
    urls = dashboard.urls_on_page()
    assert urls
    for url in urls:
        for key in keys:
            assert key not in url, url


def test_every_page_draws_its_data_without_console_errors(
    dashboard: Dashboard, web: httpx.Client, served: Served
) -> None:
    user = served.users[0]
    dashboard.sign_in(served.admin_key)
    dashboard.read_console()  # the sign-in page's messages are not a dashboard page's
    for page in PAGES:
        dashboard.open(f"/dashboard/{page}?user={user}&range=30")
        assert dashboard.driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true"
        assert severe(dashboard.read_console()) == [], page
        expected = page_json(web, served.admin_key, page, user=user, range="30")
        drawn = dashboard.plotted()
        assert len(dashboard.driver.find_elements(By.CSS_SELECTOR, ".js-plotly-plot")) == len(
            expected["charts"]
        )
        for chart in expected["charts"]:
            traces = drawn[chart["id"]]
            assert len(traces) == len(chart["traces"]), (page, chart["id"])
            for plotted, series in zip(traces, chart["traces"], strict=True):
                assert plotted_points(plotted) == json_points(series), (page, chart["id"], series["name"])
                if plotted["type"] == "scatter" and series["kind"] in ("line", "band_low", "band_high"):
                    assert plotted["connectgaps"] is False, "a missing day must stay a gap"
            heading = dashboard.driver.find_element(By.ID, f"chart-{chart['id']}-title")
            assert heading.text == chart["title"]
            holder = dashboard.driver.find_element(By.ID, f"chart-{chart['id']}")
            assert holder.get_attribute("aria-labelledby") == f"chart-{chart['id']}-title"
            table = holder.find_element(By.XPATH, "following-sibling::details//table")
            rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
            assert len(rows) >= len(chart["x"]), "the table view has a row per category or day"
        cards = dashboard.driver.find_elements(By.CSS_SELECTOR, "#cards .card")
        assert [card.find_element(By.TAG_NAME, "h3").text.lower() for card in cards] == [
            card["label"].lower() for card in expected["cards"]
        ]
        assert_no_key_in_urls(dashboard, served.admin_key)
        shot = dashboard.screenshot(ARTIFACTS / f"{page}.png")
        assert shot.stat().st_size > 10_000


def test_drawn_hrv_is_the_recharge_payloads_and_the_range_picker_changes_it(
    dashboard: Dashboard, served: Served
) -> None:
    user = served.users[1]
    dashboard.sign_in(served.admin_key)
    dashboard.open(f"/dashboard/hrv?user={user}&range=30")
    counts = {}
    for label, range_key in (("30 days", "30"), ("All", "all"), ("1 year", "365")):
        link = dashboard.driver.find_element(By.LINK_TEXT, label)
        link.click()
        dashboard.wait_ready()
        assert f"range={range_key}" in dashboard.driver.current_url
        current = dashboard.driver.find_element(By.CSS_SELECTOR, ".range-picker a[aria-current='true']")
        assert current.text == label
        nightly = dashboard.plotted()["hrv-nightly"][2]
        days = [date.fromisoformat(x[:10]) for x in nightly["x"]]
        expected = nightly_ln_rmssd(served, user, days[0], days[-1])
        assert present(nightly["y"]) == len(expected), label
        drawn = {day: value for day, value in zip(days, nightly["y"], strict=True) if value is not None}
        assert drawn == pytest.approx(expected, abs=1e-9)
        counts[range_key] = len(days)
    assert counts["30"] == 31
    assert counts["365"] == 366
    [(first_day,)] = served.warehouse_query(
        "SELECT min(day) FROM marts.daily_metrics WHERE user_id = ?", [user]
    )
    assert (
        counts["all"]
        == (date.fromisoformat(dashboard.plotted()["hrv-nightly"][2]["x"][-1][:10]) - first_day).days + 1
    )
    assert len(set(counts.values())) == 3, "each range draws a different number of days"


def test_a_user_sees_only_their_own_pages_and_the_admin_switches_users(
    dashboard: Dashboard, served: Served
) -> None:
    owner, other = served.users[0], served.users[2]
    dashboard.sign_in(served.admin_key)
    dashboard.open(f"/dashboard/sleep?user={owner}&range=90")
    Select(dashboard.driver.find_element(By.ID, "user-select")).select_by_value(other)
    dashboard.driver.find_element(By.CSS_SELECTOR, ".user-picker button[type=submit]").click()
    dashboard.wait_ready()
    assert f"user={other}" in dashboard.driver.current_url
    assert f"user={other}" in str(
        dashboard.driver.find_element(By.TAG_NAME, "body").get_attribute("data-data-url")
    )
    assert "range=90" in dashboard.driver.current_url, "switching user keeps the range"

    key = served.user_keys[owner]
    dashboard.sign_in(key)
    dashboard.open("/dashboard/today")
    assert dashboard.driver.find_elements(By.ID, "user-select") == [], "only an admin picks users"
    assert_no_key_in_urls(dashboard, key, served.admin_key)
    dashboard.open(f"/dashboard/today?user={other}", data=False)
    assert dashboard.driver.find_element(By.TAG_NAME, "h1").text == "Not your dashboard"
    assert other not in dashboard.driver.find_element(By.ID, "main").text
    assert_no_key_in_urls(dashboard, key)
    dashboard.screenshot(ARTIFACTS / "forbidden.png")
    dashboard.driver.find_element(By.CSS_SELECTOR, ".sign-out button").click()
    WebDriverWait(dashboard.driver, 10).until(lambda d: d.current_url.endswith("/login?reason=signed_out"))
    assert "You are signed out" in dashboard.driver.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert dashboard.driver.get_cookies() == []
    dashboard.signed_in_with = None


def test_the_html_paints_within_a_second_for_a_year_of_data(dashboard: Dashboard, served: Served) -> None:
    dashboard.sign_in(served.admin_key)
    timings: dict[str, dict[str, float]] = {}
    for page in PAGES:
        dashboard.open(f"/dashboard/{page}?user={served.users[0]}&range=365")
        painted = dashboard.paint_times()
        assert 0 < painted["first-contentful-paint"] < FIRST_PAINT_BUDGET_MS, (page, painted)
        timings[page] = painted
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "paint-times.json").write_text(json.dumps(timings, indent=2))
