"""The analytics routes over the served snapshot, each value cross-checked against the snapshot's own rows
(plain SELECTs, not the read layer's queries) or, for baselines/check, against fences recomputed with numpy
from the user's daily values."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np
import pytest

from polar_api.app import create_app
from polar_api.read.insights import insights
from polar_pipeline.api_keys import ApiKeyStore
from polar_pipeline.settings import Settings
from polar_pipeline.warehouse.snapshot import publish_snapshot, read_pointer
from tests.conftest import TEST_TODAY
from tests.support.served import Served
from tests.support.servers import serve_asgi
from tests.transform.reference import MIN_IQR

OUR_METRICS = (
    "ln_rmssd", "hrv_rmssd_ms", "sleep_score", "sleep_seconds", "overnight_hr_bpm", "breathing_rate",
    "steps", "training_load",
)  # fmt: skip
FENCED = ("ln_rmssd", "overnight_hr_bpm", "breathing_rate", "sleep_seconds", "steps")
UPSTREAM = {
    "hrv_rmssd": "hrv_rmssd_ms",
    "sleep_score": "sleep_score",
    "resting_hr": "overnight_hr_bpm",
    "training_load": "training_load",
}
PATTERNS = (
    "sleep_hrv_correlation", "training_recovery_lag", "activity_sleep_correlation", "overtraining_risk",
    "recovery_readiness", "hrv_trend", "sleep_trend", "resting_hr_trend", "illness_watch",
)  # fmt: skip
NEW_USER = "20000001"
"""In the ``lagging`` snapshot only: a user with a day of data and nothing computed from it yet."""


def close(got: Any, want: Any) -> bool:
    """Both missing (None, or a NaN the API must show as null), or equal to 1e-9 relative."""
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    return got is not None and math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-12)


def users_path(user: str, route: str) -> str:
    return f"/api/v1/users/{user}/{route}"


def latest_day(served: Served, user: str) -> date:
    [(day,)] = served.snapshot_query("SELECT max(day) FROM marts.daily_metrics WHERE user_id = ?", [user])
    assert isinstance(day, date)
    return day


def query_dicts(served: Served, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    """Rows as dicts, keyed by the column names the SELECT lists (``a, b, c`` only, no expressions)."""
    columns = [c.strip().split()[-1] for c in sql.split("FROM")[0].replace("SELECT", "").split(",")]
    return [dict(zip(columns, row, strict=True)) for row in served.snapshot_query(sql, params)]


# -- baselines ---------------------------------------------------------------------------------------------


def test_baselines_are_the_latest_days_rows_in_upstream_fields(api: httpx.Client, served: Served) -> None:
    for user in served.users:
        day = latest_day(served, user)
        rows = {
            row["metric"]: row
            for row in query_dicts(
                served,
                "SELECT metric, n, median, q1, q3, iqr, mean, sd, mad, robust_sd, lower_warning, "
                "upper_warning, lower_critical, upper_critical, status "
                "FROM marts.baselines WHERE user_id = ? AND day = ?",
                [user, day],
            )
        }
        rolling = {
            (metric, window): mean
            for metric, window, mean in served.snapshot_query(
                "SELECT metric, window_days, mean FROM marts.rolling_metrics WHERE user_id = ? AND day = ?",
                [user, day],
            )
        }
        baselines = api.get(users_path(user, "baselines")).json()
        assert [b["metric_name"] for b in baselines] == list(OUR_METRICS)
        for got in baselines:
            metric, row = got["metric_name"], rows[got["metric_name"]]
            assert got["day"] == day.isoformat() and got["window_days"] == 60
            assert (got["data_start_date"], got["data_end_date"]) == (
                (day - timedelta(days=60)).isoformat(),
                (day - timedelta(days=1)).isoformat(),
            )
            pairs = {
                "baseline_value": row["median"], "median": row["median"], "q1": row["q1"], "q3": row["q3"],
                "iqr": row["iqr"], "mean": row["mean"], "std_dev": row["sd"], "mad": row["mad"],
                "robust_sd": row["robust_sd"], "lower_bound": row["lower_warning"],
                "upper_bound": row["upper_warning"], "lower_critical": row["lower_critical"],
                "upper_critical": row["upper_critical"], "baseline_7d": rolling[(metric, 7)],
                "baseline_30d": rolling[(metric, 30)], "baseline_90d": rolling[(metric, 90)],
            }  # fmt: skip
            for field, want in pairs.items():
                assert close(got[field], want), (user, metric, field, got[field], want)
            assert got["sample_count"] == row["n"] and got["status"] == row["status"]
            assert got["fenced"] == (metric in FENCED)
            assert got["upstream_name"] == {ours: theirs for theirs, ours in UPSTREAM.items()}.get(metric)
            assert "min" not in got and "max" not in got  # the mart has no extremes: not shown as null


def test_upstream_names_are_aliases_and_404s_name_every_valid_metric(
    api: httpx.Client, served: Served
) -> None:
    user = served.users[0]
    for theirs, ours in UPSTREAM.items():
        by_alias = api.get(users_path(user, f"baselines/{theirs}"))
        assert by_alias.status_code == 200
        assert by_alias.json() == api.get(users_path(user, f"baselines/{ours}")).json()
        assert by_alias.json()["metric_name"] == ours
    ratio = api.get(users_path(user, "baselines/training_load_ratio"))
    assert ratio.status_code == 404 and "no personal baseline" in ratio.json()["detail"]
    for unknown in ("nope", "check", "HRV_RMSSD"):
        response = api.get(users_path(user, f"baselines/{unknown}"))
        assert response.status_code == 404
        detail = response.json()["detail"]
        assert all(name in detail for name in (*OUR_METRICS, *UPSTREAM, "training_load_ratio")), detail
    check = api.get(users_path(user, "baselines/check/nope/1.0"))
    assert check.status_code == 404 and all(
        name in check.json()["detail"] for name in (*OUR_METRICS, *UPSTREAM)
    )
    for route in ("baselines", "baselines/steps", "baselines/check/steps/1"):
        assert api.get(users_path("nobody", route)).status_code == 404


def numpy_fences(served: Served, user: str, metric: str) -> dict[str, Any]:
    """The latest day's baseline recomputed from marts.daily_metrics: the 60 days before it, the day's
    device segment, type-7 quantiles, spread = max(IQR, minimum IQR), Tukey fences (docs/methods.md §4)."""
    rows = served.snapshot_query(
        f"SELECT day, device_id, {metric} FROM marts.daily_metrics WHERE user_id = ? ORDER BY day", [user]
    )
    day = rows[-1][0]
    devices = [dev for d, dev, _ in rows if day - timedelta(days=60) <= d <= day and dev is not None]
    device = devices[-1] if devices else None
    values = np.array(
        [
            float(value)
            for d, dev, value in rows
            if day - timedelta(days=60) <= d < day
            and value is not None
            and (device is None or dev is None or dev == device)
        ]
    )
    n = len(values)
    status = "ready" if n >= 21 else "partial" if n >= 7 else "insufficient"
    if n == 0:
        return {"n": 0, "status": status}
    q1, median, q3 = (float(q) for q in np.percentile(values, [25, 50, 75]))
    spread = max(q3 - q1, MIN_IQR[metric])
    mad = float(np.median(np.abs(values - median)))
    return {
        "n": n,
        "status": status,
        "median": median,
        "robust_sd": 1.4826 * mad if mad > 0 else spread / 1.349,
        "lower": q1 - 1.5 * spread,
        "upper": q3 + 1.5 * spread,
        "lower_critical": q1 - 3 * spread,
        "upper_critical": q3 + 3 * spread,
    }


def expected_verdict(value: float, fences: dict[str, Any]) -> tuple[bool, str | None, str | None]:
    if fences["status"] == "insufficient":
        return False, None, None
    if fences["lower"] <= value <= fences["upper"]:
        return False, None, None
    far = value < fences["lower_critical"] or value > fences["upper_critical"]
    return True, "critical" if far else "warning", "below" if value < fences["lower"] else "above"


def test_check_judges_values_with_fences_recomputed_by_numpy(api: httpx.Client, served: Served) -> None:
    """Every metric of one user on both sides of each fence; the fenced metrics of the others at the edges."""
    judged = 0
    for user in served.users:
        for metric in OUR_METRICS if user == served.users[0] else FENCED:
            fences = numpy_fences(served, user, metric)
            if fences["status"] == "insufficient":
                continue
            lower, upper = fences["lower"], fences["upper"]
            probes = [
                math.nextafter(lower, -math.inf),
                math.nextafter(upper, math.inf),
                fences["lower_critical"] - abs(fences["lower_critical"]) - 1,
                1e300,
            ]
            if user == served.users[0]:
                probes += [fences["median"], lower, (upper + fences["upper_critical"]) / 2, -1e300]
            for value in probes:
                got = api.get(users_path(user, f"baselines/check/{metric}/{value!r}"))
                assert got.status_code == 200, (metric, value, got.text)
                body = got.json()
                assert body["value"] == value and body["metric_name"] == metric
                assert body["status"] == fences["status"] and body["sample_count"] == fences["n"]
                for field, want in (
                    ("lower_bound", lower),
                    ("upper_bound", upper),
                    ("baseline", fences["median"]),
                ):
                    assert close(body[field], want), (user, metric, field, body[field], want)
                assert (body["is_anomaly"], body["severity"], body["direction"]) == expected_verdict(
                    value, fences
                ), (user, metric, value)
                if abs(value) < 1e100:
                    assert close(body["robust_z"], (value - fences["median"]) / fences["robust_sd"])
                assert body["fenced_in_anomalies"] == (metric in FENCED)
                assert (body["note"] is None) == (metric in FENCED)
                judged += 1
    assert judged >= 8 * len(OUR_METRICS) + 2 * 4 * len(FENCED)  # every baseline here is ready or partial


def test_check_of_the_latest_days_values_agrees_with_marts_anomalies(
    api: httpx.Client, served: Served
) -> None:
    """The latest day's own value judged against its baseline is exactly what marts.anomalies flagged."""
    flagged_somewhere = False
    for user in served.users:
        day = latest_day(served, user)
        [values] = served.snapshot_query(
            f"SELECT {', '.join(FENCED)} FROM marts.daily_metrics WHERE user_id = ? AND day = ?", [user, day]
        )
        flags = {
            metric: (severity, direction)
            for metric, severity, direction in served.snapshot_query(
                "SELECT metric, severity, direction FROM marts.anomalies WHERE user_id = ? AND day = ?",
                [user, day],
            )
        }
        for metric, value in zip(FENCED, values, strict=True):
            if value is None:
                continue
            body = api.get(users_path(user, f"baselines/check/{metric}/{float(value)!r}")).json()
            assert body["is_anomaly"] == (metric in flags), (user, metric, value)
            if metric in flags:
                flagged_somewhere = True
                assert (body["severity"], body["direction"]) == flags[metric]
    assert flagged_somewhere  # the demo data flags steps of 10000002 on the last day


def test_check_rejects_non_finite_values_and_stays_sane_at_the_extremes(
    api: httpx.Client, served: Served
) -> None:
    user = served.users[0]
    for bad in ("nan", "NaN", "inf", "-inf", "Infinity", "-Infinity", "1e999", "-1e999", "abc"):
        response = api.get(users_path(user, f"baselines/check/steps/{bad}"))
        assert response.status_code == 422, (bad, response.text)
    for extreme in ("1.7976931348623157e308", "-1.7976931348623157e308", "5e-324", "-0.0", "0"):
        for metric in ("steps", "ln_rmssd", "sleep_score", "resting_hr"):
            response = api.get(users_path(user, f"baselines/check/{metric}/{extreme}"))
            assert response.status_code == 200, (metric, extreme, response.text)
            body = json.loads(response.text)  # strict JSON: no NaN or Infinity tokens
            assert body["value"] == float(extreme)
            for field in ("robust_z", "deviation_percent"):
                assert body[field] is None or math.isfinite(body[field])
    ratio = api.get(users_path(user, "baselines/check/training_load_ratio/1.4")).json()
    assert ratio["is_anomaly"] is False and ratio["status"] == "insufficient" and ratio["severity"] is None
    assert "no personal baseline" in ratio["reason"]


# -- anomalies ---------------------------------------------------------------------------------------------


ANOMALY_SQL = (
    "SELECT metric, day, value, severity, direction, deviation_pct, robust_z, baseline_median "
    "FROM marts.anomalies WHERE user_id = ? AND day BETWEEN ? AND ?"
)


def expected_anomalies(served: Served, user: str, since: date, until: date) -> list[dict[str, Any]]:
    rows = query_dicts(served, ANOMALY_SQL, [user, since, until])
    for row in rows:
        [(lower, upper, mean)] = served.snapshot_query(
            "SELECT lower_warning, upper_warning, mean FROM marts.baselines "
            "WHERE user_id = ? AND day = ? AND metric = ?",
            [user, row["day"], row["metric"]],
        )
        row |= {"lower": lower, "upper": upper, "mean": mean}
    return rows


def assert_anomalies_match(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert sorted((a["day"], a["metric_name"]) for a in got) == sorted(
        (w["day"].isoformat(), w["metric"]) for w in want
    )
    by_key = {(w["day"].isoformat(), w["metric"]): w for w in want}
    for anomaly in got:
        row = by_key[(anomaly["day"], anomaly["metric_name"])]
        assert (anomaly["severity"], anomaly["direction"]) == (row["severity"], row["direction"])
        for field, want_value in (
            ("current_value", row["value"]), ("baseline_value", row["baseline_median"]),
            ("median_value", row["baseline_median"]), ("mean_value", row["mean"]),
            ("deviation_percent", row["deviation_pct"]), ("robust_z", row["robust_z"]),
            ("lower_bound", row["lower"]), ("upper_bound", row["upper"]),
        ):  # fmt: skip
            assert close(anomaly[field], want_value), (anomaly, field)
        value = anomaly["current_value"]
        assert value < anomaly["lower_bound"] or value > anomaly["upper_bound"]


def test_anomalies_of_the_latest_day_and_of_a_window(api: httpx.Client, served: Served) -> None:
    seen_any = False
    for user in served.users:
        day = latest_day(served, user)
        latest = api.get(users_path(user, "anomalies")).json()
        assert (latest["user_id"], latest["from_date"], latest["to_date"]) == (
            user,
            day.isoformat(),
            day.isoformat(),
        )
        want = expected_anomalies(served, user, day, day)
        assert latest["anomaly_count"] == len(want) == len(latest["anomalies"])
        assert_anomalies_match(latest["anomalies"], want)
        window = api.get(users_path(user, "anomalies"), params={"days": 60}).json()
        since = TEST_TODAY - timedelta(days=60)
        want = expected_anomalies(served, user, since, TEST_TODAY)
        assert window["from_date"] == since.isoformat() and window["anomaly_count"] == len(want)
        assert_anomalies_match(window["anomalies"], want)
        assert [a["day"] for a in window["anomalies"]] == sorted(
            (a["day"] for a in window["anomalies"]), reverse=True
        )
        seen_any = seen_any or bool(want)
    assert seen_any
    assert api.get(users_path("nobody", "anomalies")).status_code == 404
    assert api.get(users_path(served.users[0], "anomalies"), params={"days": 0}).status_code == 422


# -- patterns ----------------------------------------------------------------------------------------------


def view_patterns(served: Served, user: str, day: date) -> dict[str, dict[str, Any]]:
    rows = query_dicts(
        served,
        "SELECT pattern_name, pattern_type, score, confidence, significance, metrics_involved, sample_count, "
        "details FROM analytics.patterns WHERE user_id = ? AND day = ?",
        [user, day],
    )
    return {row["pattern_name"]: row for row in rows}


def test_patterns_are_the_views_rows_of_the_latest_day(api: httpx.Client, served: Served) -> None:
    for user in served.users:
        day = latest_day(served, user)
        want = view_patterns(served, user, day)
        got = api.get(users_path(user, "patterns")).json()
        assert [p["pattern_name"] for p in got] == [name for name in PATTERNS if name in want]
        for pattern in got:
            row = want[pattern["pattern_name"]]
            assert pattern["day"] == day.isoformat()
            assert (pattern["pattern_type"], pattern["significance"], pattern["sample_count"]) == (
                row["pattern_type"], row["significance"], row["sample_count"],
            )  # fmt: skip
            assert close(pattern["score"], row["score"]) and close(pattern["confidence"], row["confidence"])
            assert pattern["metrics_involved"] == json.loads(row["metrics_involved"])
            assert_same_json(pattern["details"], json.loads(row["details"]))
            assert api.get(users_path(user, f"patterns/{pattern['pattern_name']}")).json() == pattern
    response = api.get(users_path(served.users[0], "patterns/fitness_trend"))
    assert response.status_code == 404
    assert all(name in response.json()["detail"] for name in PATTERNS)
    assert api.get(users_path("nobody", "patterns")).status_code == 404
    assert api.get(users_path("nobody", "patterns/hrv_trend")).status_code == 404


def assert_same_json(got: Any, want: Any) -> None:
    """Equal JSON values, floats to 1e-9 and NaN as null."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys()
        for key in want:
            assert_same_json(got[key], want[key])
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert_same_json(g, w)
    elif isinstance(want, float):
        assert close(got, want), (got, want)
    else:
        assert got == want


# -- insights ----------------------------------------------------------------------------------------------


def test_insights_are_consistent_with_the_days_rows(api: httpx.Client, served: Served) -> None:
    for user in served.users:
        day = latest_day(served, user)
        body = api.get(users_path(user, "insights")).json()
        assert (body["user_id"], body["day"]) == (user, day.isoformat())
        [(observations, suggestions)] = served.snapshot_query(
            "SELECT observations, suggestions FROM analytics.insights WHERE user_id = ? AND day = ?",
            [user, day],
        )
        assert_same_json(body["observations"], json.loads(observations))
        assert_same_json(body["suggestions"], json.loads(suggestions))

        flagged = {row["metric"]: row for row in expected_anomalies(served, user, day, day)}
        assert {a["metric"] for a in body["anomalies"]} == set(flagged)
        for anomaly in body["anomalies"]:
            row = flagged[anomaly["metric"]]
            assert close(anomaly["current_value"], row["value"]) and anomaly["severity"] == row["severity"]
        anomaly_facts = [o for o in body["observations"] if o["rule"] == "anomaly"]
        assert len(anomaly_facts) == len(body["anomalies"])  # the same day's flags

        daily = query_dicts(
            served,
            f"SELECT {', '.join(OUR_METRICS)} FROM marts.daily_metrics WHERE user_id = ? AND day = ?",
            [user, day],
        )[0]
        [(ratio,)] = served.snapshot_query(
            "SELECT polar_ratio FROM marts.training_load WHERE user_id = ? AND day = ?", [user, day]
        )
        current = body["current_metrics"]
        assert close(current["hrv"], daily["hrv_rmssd_ms"]) and close(
            current["sleep_score"], daily["sleep_score"]
        )
        assert close(current["resting_hr"], daily["overnight_hr_bpm"])
        assert close(current["training_load_ratio"], ratio)

        baselines = {
            metric: (median, status, n)
            for metric, median, status, n in served.snapshot_query(
                "SELECT metric, median, status, n FROM marts.baselines WHERE user_id = ? AND day = ?",
                [user, day],
            )
        }
        assert list(body["baselines"]) == list(OUR_METRICS)
        for metric, got in body["baselines"].items():
            median, status, n = baselines[metric]
            assert close(got["baseline"], median) and (got["status"], got["sample_count"]) == (status, n)
            assert close(got["current"], daily[metric])
            if daily[metric] is not None and median:
                ratio_ms = (
                    math.exp(daily[metric] - median) if metric == "ln_rmssd" else daily[metric] / median
                )
                assert close(got["percent_of_baseline"], 100 * ratio_ms)

        view = view_patterns(served, user, day)
        assert [p["name"] for p in body["patterns"]] == [name for name in PATTERNS if name in view]
        for pattern in body["patterns"]:
            row = view[pattern["name"]]
            assert (
                pattern["pattern_type"] == row["pattern_type"]
                and pattern["significance"] == row["significance"]
            )
            assert close(pattern["score"], row["score"]) and close(pattern["confidence"], row["confidence"])

        readiness = query_dicts(
            served,
            "SELECT feature, stream, distinct_days, required_days, unlocked FROM analytics.readiness "
            "WHERE user_id = ? AND day = ?",
            [user, day],
        )
        assert {f: v["available"] for f, v in body["feature_availability"].items()} == {
            row["feature"]: row["unlocked"] for row in readiness
        }
        by_stream = {row["stream"]: row["distinct_days"] for row in readiness}
        assert body["data_age_days"] == max(by_stream["sleep"], by_stream["recharge"])
        assert body["status"] == ("ready" if body["data_age_days"] >= 21 else "partial")
        [(fresh,)] = served.snapshot_query(
            "SELECT max(day) FROM marts.daily_metrics WHERE user_id = ? AND "
            "(sleep_seconds IS NOT NULL OR ln_rmssd IS NOT NULL)",
            [user],
        )
        assert body["data_freshness"] == f"{fresh.isoformat()}T00:00:00Z"
    assert api.get(users_path("nobody", "insights")).status_code == 404


def test_insights_kept_per_generation_are_the_fresh_answer(api: httpx.Client, served: Served) -> None:
    """The answer is kept for the snapshot generation: ``generated_at`` is when it was computed."""
    info = read_pointer(served.settings.snapshots_dir)
    assert info is not None
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        fresh = insights(con.cursor(), served.users[0], now=datetime.now(UTC))
    finally:
        con.close()
    assert fresh is not None
    first = api.get(users_path(served.users[0], "insights")).json()
    second = api.get(users_path(served.users[0], "insights")).json()
    assert datetime.fromisoformat(second.pop("generated_at")) == datetime.fromisoformat(
        first.pop("generated_at")
    )
    assert first == second == json.loads(fresh.model_dump_json(exclude={"generated_at"}))


def test_insights_cost_two_queries_of_precomputed_tables(served: Served) -> None:
    """Two statements per request (the day's insights row, then one UNION ALL of point lookups), reading
    marts and analytics only; measured with DuckDB's query log on the snapshot the API reads."""
    info = read_pointer(served.settings.snapshots_dir)
    assert info is not None
    con = duckdb.connect(str(info.path), read_only=True)
    try:
        con.execute("CALL enable_logging('QueryLog')")
        cursor = con.cursor()
        for user in served.users:
            assert insights(cursor, user, now=datetime.now(UTC)) is not None
        cursor.close()
        con.execute("CALL disable_logging()")
        logged = [
            str(row[0])
            for row in con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'").fetchall()
            if not str(row[0]).lstrip().upper().startswith("CALL ")
        ]
    finally:
        con.close()
    # Two per user; a third (data_freshness) only for a user whose latest day has no night.
    nights_on_last_day = sum(
        1
        for user in served.users
        if served.snapshot_query(
            "SELECT sleep_seconds IS NOT NULL OR ln_rmssd IS NOT NULL FROM marts.daily_metrics "
            "WHERE user_id = ? AND day = ?",
            [user, latest_day(served, user)],
        )[0][0]
    )
    assert len(logged) == 2 * len(served.users) + (len(served.users) - nights_on_last_day)
    schemas = {
        schema.lower() for message in logged for schema in re.findall(r"(?:FROM|JOIN)\s+(\w+)\.", message)
    }
    assert schemas == {"marts", "analytics"}, schemas


# -- analytics/status --------------------------------------------------------------------------------------


def test_analytics_status_reports_the_readiness_rows(api: httpx.Client, served: Served) -> None:
    user = served.users[0]
    first_day = served.snapshot_query("SELECT min(day) FROM marts.daily_metrics WHERE user_id = ?", [user])[
        0
    ][0]
    for day in (None, first_day + timedelta(days=10)):
        params = {"day": day.isoformat()} if day else {}
        body = api.get(users_path(user, "analytics/status"), params=params).json()
        as_of = day or latest_day(served, user)
        rows = query_dicts(
            served,
            "SELECT feature, stream, distinct_days, required_days, days_remaining, unlocked "
            "FROM analytics.readiness WHERE user_id = ? AND day = ?",
            [user, as_of],
        )
        assert body["as_of"] == as_of.isoformat() and body["window_days"] == 90
        assert {f["feature"] for f in body["features"]} == {row["feature"] for row in rows}
        by_feature = {row["feature"]: row for row in rows}
        for feature in body["features"]:
            row = by_feature[feature["feature"]]
            assert (feature["days_with_data"], feature["days_required"], feature["unlocked"]) == (
                row["distinct_days"], row["required_days"], row["unlocked"],
            )  # fmt: skip
            assert feature["days_remaining"] == max(0, row["required_days"] - row["distinct_days"])
            assert feature["progress_percent"] == round(
                min(100, 100 * row["distinct_days"] / row["required_days"]), 1
            )
            assert body["unlock_progress"][feature["feature"]]["unlocked"] == row["unlocked"]
            assert body["features_available"][feature["feature"]] == row["unlocked"]
        assert body["data_days"] == {row["stream"]: row["distinct_days"] for row in rows}
        locked = [row for row in rows if not row["unlocked"]]
        if locked:
            fewest = min(row["days_remaining"] for row in locked)
            assert body["next_unlock"]["days_remaining"] == fewest
            assert by_feature[body["next_unlock"]["feature"]]["days_remaining"] == fewest
            assert body["recommendation"]
        else:
            assert body["next_unlock"] is None and body["recommendation"] is None
        if day is not None:
            assert locked  # ten days in, several features still wait
    for not_a_day in ("0", "2026-02-30", "2026-03-01T00:00:00", "yesterday"):
        assert api.get(users_path(user, "analytics/status"), params={"day": not_a_day}).status_code == 422
    assert api.get(users_path("nobody", "analytics/status")).status_code == 404


# -- our series --------------------------------------------------------------------------------------------


SERIES = {
    "hrv-status": (
        "marts.hrv_status",
        "day, status, ln_rmssd_7d, n_7d, cv_7d, normal_low, normal_high, n_baseline, baseline_mean, "
        "baseline_sd",
    ),
    "training-load": (
        "marts.training_load",
        "day, daily_load, acute_7d, chronic_28d, acwr_coupled, acwr_uncoupled, ewma_acute, ewma_chronic, "
        "acwr_ewma, polar_ratio",
    ),
    "sleep-debt": ("marts.sleep_debt", "day, sleep_need_seconds, deficit_seconds, debt_seconds, nights"),
    "recovery": ("analytics.recovery", "day, score, level, contributors"),
    "illness-watch": ("analytics.illness_watch", "day, flagged, level, signals"),
}


def test_series_routes_return_their_tables_rows_for_the_window(api: httpx.Client, served: Served) -> None:
    user = served.users[1]
    for route, (table, columns) in SERIES.items():
        for days in (None, 3):
            got = api.get(users_path(user, route), params={"days": days} if days else {}).json()
            since = TEST_TODAY - timedelta(days=days or 30)
            want = query_dicts(
                served,
                f"SELECT {columns} FROM {table} WHERE user_id = ? AND day >= ? ORDER BY day DESC",
                [user, since],
            )
            assert len(got) == len(want) == (days or 30) + 1, route
            for row, expected in zip(got, want, strict=True):
                for column, value in expected.items():
                    if column in ("contributors", "signals"):
                        assert_same_json(row[column], json.loads(value))
                    elif column == "day":
                        assert row["day"] == value.isoformat()
                    else:
                        assert close(row[column], value) if isinstance(value, float) else row[column] == value
                if route == "hrv-status":
                    ln_7d = expected["ln_rmssd_7d"]
                    assert close(row["hrv_7d_ms"], math.exp(ln_7d) if ln_7d is not None else None)
                if route == "sleep-debt":
                    debt = expected["debt_seconds"]
                    assert close(row["debt_hours"], debt / 3600 if debt is not None else None)
        assert api.get(users_path("nobody", route)).status_code == 404


def test_trends_and_correlations_default_to_the_latest_day(api: httpx.Client, served: Served) -> None:
    user = served.users[2]
    day = latest_day(served, user)
    for route, table, key, columns, per_day in (
        ("trends", "analytics.trends", ("metric", "window_days"), "metric, window_days, n, mk_tau, p_value, "
         "theil_sen_per_week, pct_change_7d_vs_30d, meaningful, direction, polarity", 10),
        ("correlations", "analytics.correlations", ("x_metric", "y_metric", "lag_days"),
         "x_metric, y_metric, lag_days, n, n_effective, rho, p_value, q_value, strength, direction, "
         "significant", 19),
    ):  # fmt: skip
        latest = api.get(users_path(user, route)).json()
        want = query_dicts(
            served, f"SELECT {columns} FROM {table} WHERE user_id = ? AND day = ?", [user, day]
        )
        assert len(latest) == len(want) == per_day and {row["day"] for row in latest} == {day.isoformat()}
        by_key = {tuple(row[k] for k in key): row for row in want}
        for row in latest:
            expected = by_key[tuple(row[k] for k in key)]
            for column, value in expected.items():
                assert close(row[column], value) if isinstance(value, float) else row[column] == value
        window = api.get(users_path(user, route), params={"days": 3}).json()
        assert len(window) == 4 * per_day
        assert api.get(users_path("nobody", route)).status_code == 404


# -- a user whose data nothing has been computed from yet --------------------------------------------------


@pytest.fixture(scope="module")
def lagging(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The served snapshot plus ``NEW_USER``: one day in marts.daily_metrics and no other row anywhere."""
    source = read_pointer(served.settings.snapshots_dir)
    assert source is not None
    home = tmp_path_factory.mktemp("lagging")
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{source.path}' AS source (READ_ONLY)")
        tables = con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_catalog = 'source' AND table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            con.execute(f'CREATE TABLE "{schema}"."{table}" AS SELECT * FROM source."{schema}"."{table}"')
        con.execute("DETACH source")
        con.execute(
            "INSERT INTO marts.daily_metrics SELECT * REPLACE (? AS user_id) FROM marts.daily_metrics "
            "WHERE user_id = ? AND day = ?",
            [NEW_USER, served.users[0], TEST_TODAY],
        )
        settings = Settings(home=Path(home), today=TEST_TODAY)
        publish_snapshot(con, settings.snapshots_dir)
    finally:
        con.close()
    key = ApiKeyStore(settings.control_store_path).create(None, admin=True, name="tests").secret
    with (
        serve_asgi(create_app(settings)) as base_url,
        httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=30) as client,
    ):
        yield client


def test_a_known_user_with_nothing_computed_gets_empty_answers(lagging: httpx.Client) -> None:
    for route in (
        "baselines",
        "patterns",
        "trends",
        "correlations",
        "hrv-status",
        "recovery",
        "illness-watch",
    ):
        response = lagging.get(users_path(NEW_USER, route))
        assert (response.status_code, response.json()) == (200, []), route
    assert lagging.get(users_path(NEW_USER, "anomalies")).json()["anomaly_count"] == 0
    missing = lagging.get(users_path(NEW_USER, "baselines/steps"))
    assert missing.status_code == 404 and "no baseline of steps" in missing.json()["detail"]
    not_yet = lagging.get(users_path(NEW_USER, "patterns/hrv_trend"))
    assert not_yet.status_code == 404 and "not computed for user" in not_yet.json()["detail"]
    check = lagging.get(users_path(NEW_USER, "baselines/check/resting_hr/60")).json()
    assert (check["is_anomaly"], check["status"], check["metric_name"]) == (
        False,
        "insufficient",
        "overnight_hr_bpm",
    )
    assert check["reason"]
    body = lagging.get(users_path(NEW_USER, "insights")).json()
    assert (body["status"], body["day"], body["observations"], body["patterns"]) == (
        "unavailable",
        None,
        [],
        [],
    )
    status = lagging.get(users_path(NEW_USER, "analytics/status")).json()
    assert status["features"] and not any(f["unlocked"] for f in status["features"])
    assert all(f["days_remaining"] == f["days_required"] for f in status["features"])
    assert status["next_unlock"]["feature"] == "sleep_debt"  # 7 days, the fewest of the catalogue
    assert lagging.get(users_path("nobody", "insights")).status_code == 404


def test_every_analytics_route_is_in_the_openapi_schema_with_a_response_model(api: httpx.Client) -> None:
    schema = api.get("/openapi.json").json()
    routes = (
        "baselines", "baselines/{metric}", "baselines/check/{metric}/{value}", "anomalies", "patterns",
        "patterns/{name}", "insights", "analytics/status", "hrv-status", "training-load", "sleep-debt",
        "trends", "recovery", "correlations", "illness-watch",
    )  # fmt: skip
    for route in routes:
        operation = schema["paths"][f"/api/v1/users/{{user_id}}/{route}"]["get"]
        assert "$ref" in json.dumps(operation["responses"]["200"]["content"]["application/json"]["schema"]), (
            route
        )
        assert "404" in operation["responses"], route
