"""The data call of each page over plain HTTP: its shape, its series against independent reads of the
warehouse's raw payloads and the snapshot's tables (plain SQL, not the read layer's), and missing days as
null, never 0."""

from __future__ import annotations

import math
from datetime import date, timedelta
from importlib import resources
from typing import Any

import httpx
import pytest

from polar_api.dashboard.pages import PAGES
from tests.conftest import TEST_TODAY
from tests.dashboard.support import (
    chart,
    cookie,
    days,
    nightly_deep_sleep_hours,
    nightly_ln_rmssd,
    page_json,
    present,
    raw_payloads,
    trace,
    workouts_by_sport,
)
from tests.support.served import Served

DATE_CHARTS = {
    "today": ("recovery-score", "hrv-status"),
    "hrv": ("hrv-nightly", "overnight-hr"),
    "sleep": ("sleep-stages", "sleep-score", "sleep-debt"),
    "training": ("daily-load", "acute-chronic", "acwr"),
    "patterns": (),
    "health": ("coverage",),
}


def on_days(body: dict[str, Any], values: list[Any]) -> dict[date, Any]:
    return {date.fromisoformat(x): value for x, value in zip(body_days(body), values, strict=True)}


def body_days(body: dict[str, Any]) -> list[str]:
    return [d.isoformat() for d in days(date.fromisoformat(body["since"]), date.fromisoformat(body["until"]))]


@pytest.mark.parametrize("page", list(PAGES))
def test_each_page_is_one_document_with_every_series_it_draws(
    web: httpx.Client, served: Served, page: str
) -> None:
    user = served.users[0]
    body = page_json(web, served.admin_key, page, user=user, range="30")
    assert (body["page"], body["user_id"], body["range"]) == (page, user, "30")
    assert body["until"] == TEST_TODAY.isoformat()
    assert date.fromisoformat(body["since"]) == TEST_TODAY - timedelta(days=30), "the API's days=30 window"
    assert body["snapshot"]["generation"] >= 1 and body["snapshot"]["age_seconds"] >= 0
    assert body["cards"], "every page leads with its headline facts"
    assert [c["id"] for c in body["charts"] if c["x_kind"] == "date"] == list(DATE_CHARTS[page])
    for one in body["charts"]:
        assert one["title"] and one["summary"] and one["x_title"] and one["y_title"]
        if one["x_kind"] == "date":
            assert one["x"] == body_days(body), "a date chart has every day of the range, gaps included"
        for series in one["traces"]:
            if series["kind"] == "heatmap":
                assert len(series["z"]) == len(series["rows"])
                assert all(len(row) == len(one["x"]) for row in series["z"])
            else:
                assert len(series["y"]) == len(series["x"] if series["x"] is not None else one["x"])
                assert all(v is None or math.isfinite(v) for v in series["y"])
    for table in body["tables"]:
        assert all(len(row) == len(table["columns"]) for row in table["rows"])


def test_nightly_hrv_is_the_recharge_payloads_ln_rmssd_and_a_missing_night_is_null(
    web: httpx.Client, served: Served
) -> None:
    user = served.users[1]
    body = page_json(web, served.admin_key, "hrv", user=user, range="365")
    since, until = date.fromisoformat(body["since"]), date.fromisoformat(body["until"])
    expected = nightly_ln_rmssd(served, user, since, until)
    drawn = on_days(body, trace(body, "hrv-nightly", "Nightly ln rMSSD")["y"])
    assert len(expected) > 40
    assert {d for d, v in drawn.items() if v is not None} == set(expected)
    for day, value in expected.items():
        assert drawn[day] == pytest.approx(value, abs=1e-9)
    missing = [day for day in drawn if day not in expected]
    assert missing, "a year back reaches days before the user's first night"
    assert all(drawn[day] is None for day in missing), "a night without HRV is a gap, never 0"
    heart = on_days(body, trace(body, "overnight-hr", "Overnight heart rate")["y"])
    recharge = raw_payloads(served, "nightly_recharge", user, since, until)
    assert {d for d, v in heart.items() if v is not None} == {
        d for d, p in recharge.items() if p.get("heart_rate_avg")
    }


def test_sleep_stages_are_the_sleep_payloads_per_night(web: httpx.Client, served: Served) -> None:
    user = served.users[0]
    body = page_json(web, served.admin_key, "sleep", user=user, range="90")
    since, until = date.fromisoformat(body["since"]), date.fromisoformat(body["until"])
    expected = nightly_deep_sleep_hours(served, user, since, until)
    drawn = on_days(body, trace(body, "sleep-stages", "Deep")["y"])
    assert expected and {d for d, v in drawn.items() if v is not None} == set(expected)
    for day, hours in expected.items():
        assert drawn[day] == pytest.approx(hours)
    assert drawn[since] is None, "90 days back is before the first night: empty, not 0"


def test_training_counts_workouts_by_sport_and_has_a_load_for_every_day_with_data(
    web: httpx.Client, served: Served
) -> None:
    user = served.users[2]
    body = page_json(web, served.admin_key, "training", user=user, range="all")
    since, until = date.fromisoformat(body["since"]), date.fromisoformat(body["until"])
    [(first_day,)] = served.warehouse_query(
        "SELECT min(day) FROM marts.daily_metrics WHERE user_id = ?", [user]
    )
    assert since == first_day, "'all' starts on the user's first day"
    sports = chart(body, "sports")
    assert dict(zip(sports["x"], sports["traces"][0]["y"], strict=True)) == workouts_by_sport(
        served, user, since, until
    )
    [(mart_days,)] = served.warehouse_query(
        "SELECT count(*) FROM marts.training_load WHERE user_id = ? AND day BETWEEN ? AND ?",
        [user, since, until],
    )
    assert present(trace(body, "daily-load", "Daily load")["y"]) == mart_days


def test_today_draws_every_recovery_score_of_the_range(web: httpx.Client, served: Served) -> None:
    for user in served.users:
        body = page_json(web, served.admin_key, "today", user=user, range="30")
        [(scored,)] = served.snapshot_query(
            "SELECT count(score) FROM analytics.recovery WHERE user_id = ? AND day BETWEEN ? AND ?",
            [user, body["since"], body["until"]],
        )
        assert present(trace(body, "recovery-score", "Recovery score")["y"]) == scored
        [(features,)] = served.snapshot_query(
            "SELECT count(DISTINCT feature) FROM analytics.readiness WHERE user_id = ?", [user]
        )
        assert len(chart(body, "readiness")["x"]) == features


def test_patterns_list_the_significant_pairs_and_every_trend(web: httpx.Client, served: Served) -> None:
    user = served.users[0]
    body = page_json(web, served.admin_key, "patterns", user=user)
    latest = served.snapshot_query("SELECT max(day) FROM analytics.correlations WHERE user_id = ?", [user])[
        0
    ][0]
    significant = served.snapshot_query(
        "SELECT DISTINCT x_metric, y_metric FROM analytics.correlations "
        "WHERE user_id = ? AND day = ? AND significant",
        [user, latest],
    )
    table = next(t for t in body["tables"] if t["id"] == "significant-pairs")
    assert len(table["rows"]) == len(significant)
    [(pairs,)] = served.snapshot_query(
        "SELECT count(DISTINCT (x_metric, y_metric)) FROM analytics.correlations "
        "WHERE user_id = ? AND day = ?",
        [user, latest],
    )
    assert sum(len(t["y"]) for t in chart(body, "correlations")["traces"]) == pairs
    [(trend_rows,)] = served.snapshot_query(
        "SELECT count(*) FROM analytics.trends WHERE user_id = ? AND day = ?", [user, latest]
    )
    assert len(next(t for t in body["tables"] if t["id"] == "trend-table")["rows"]) == trend_rows


def test_data_health_shows_each_streams_days_and_the_snapshot(web: httpx.Client, served: Served) -> None:
    user = served.users[0]
    body = page_json(web, served.admin_key, "health", user=user, range="90")
    since, until = date.fromisoformat(body["since"]), date.fromisoformat(body["until"])
    coverage = chart(body, "coverage")["traces"][0]
    sleep_row = coverage["z"][coverage["rows"].index("Sleep")]
    nights = raw_payloads(served, "sleep", user, since, until)
    assert {d for d, v in on_days(body, sleep_row).items() if v is not None} == set(nights)
    labels = [card["label"] for card in body["cards"]]
    assert labels[0] == "State" and "Snapshot" in labels and "Quarantined records" in labels
    [(state,)] = served.snapshot_query(
        "SELECT state FROM analytics.data_health WHERE user_id = ? ORDER BY day DESC LIMIT 1", [user]
    )
    assert state == "ok" and body["cards"][0]["value"] == "Data is arriving"
    [(first_day,)] = served.warehouse_query("SELECT min(day) FROM raw.sleep WHERE user_id = ?", [user])
    without_sleep = {d for d in days(max(since, first_day), until) if d not in nights}
    gaps = next(t for t in body["tables"] if t["id"] == "gaps")
    listed: set[date] = set()
    for stream, first, last, length in gaps["rows"]:
        run = days(date.fromisoformat(first), date.fromisoformat(last))
        assert len(run) == length
        if stream == "Sleep":
            listed |= set(run)
    assert listed == without_sleep


def test_bad_requests_are_refused(web: httpx.Client, served: Served) -> None:
    key = cookie(served.admin_key)
    assert web.get("/dashboard/data/nowhere", headers=key).status_code == 404
    assert web.get("/dashboard/nowhere", headers=key).status_code == 404
    assert web.get("/dashboard/data/today?range=7", headers=key).status_code == 400
    assert web.get("/dashboard/hrv?range=7", headers=key).status_code == 400
    assert web.get("/dashboard/data/today?user=..%2Fetc", headers=key).status_code == 400


def test_pages_and_data_are_gzipped_private_and_framed_by_no_one(web: httpx.Client, served: Served) -> None:
    key = cookie(served.admin_key)
    for path in ("/dashboard/hrv?range=365", "/dashboard/data/hrv?range=365"):
        response = web.get(path, headers={**key, "Accept-Encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self';" in response.headers["content-security-policy"]
    plain = web.get("/dashboard/data/hrv?range=365", headers={**key, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json()["page"] == "hrv"


def test_plotly_is_served_locally_versioned_gzipped_and_cached(web: httpx.Client, served: Served) -> None:
    html = web.get("/dashboard/today", headers=cookie(served.admin_key)).text
    src = html.split('<script defer src="')[1].split('"')[0]
    assert src.startswith("/dashboard/static/plotly-") and src.endswith(".min.js")
    assert "<script>" not in html and "http" not in src
    original = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    response = web.get(src, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert int(response.headers["content-length"]) < len(original) / 2
    assert response.content == original, "httpx decodes the gzip: the bytes are plotly.min.js"
    raw = web.get(src, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == original
    again = web.get(src, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304
    assert web.get("/dashboard/static/plotly.min.js").status_code == 404, "only versioned names are served"
    for name in ("dashboard.css", "dashboard.js"):
        stem = name.split(".")[0]
        assert f"/dashboard/static/{stem}." in html
