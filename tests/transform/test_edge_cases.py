"""Hand-made edge cases: the numpy reference agrees everywhere and the documented rules hold on known days."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_pipeline.sqlmodels import ModelGraph, create_views, run_models
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer
from tests.support.fixtures import ACCESSLINK_FIXTURES
from tests.transform import reference
from tests.transform.edge_data import (
    BAD_ACTIVITY_DAY,
    BAD_EXERCISE_DAY,
    BAD_RECHARGE_DAY,
    BAD_SLEEP_DAY,
    DEVICE_SWITCH_DAY,
    EDGE_DAYS,
    GAP_DAYS,
    NO_SLEEP_WORKOUT_DAY,
    ZONED_EXERCISE_DAY,
    day,
    write_edge_payloads,
)

MARTS = (
    "daily_metrics",
    "rolling_metrics",
    "baselines",
    "anomalies",
    "hrv_status",
    "training_load",
    "sleep_debt",
)


Edge = tuple[duckdb.DuckDBPyConnection, Any]


@pytest.fixture(scope="module")
def edge(graph: ModelGraph, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    path = tmp_path_factory.mktemp("edge") / "warehouse.duckdb"
    con = connect_writer(path)
    ensure_raw_schema(con)
    raw = write_edge_payloads(con)
    run_models(con, graph, ["edge", "lonely"], day(0), day(EDGE_DAYS - 1))
    yield con, raw
    con.close()


def one(con: duckdb.DuckDBPyConnection, sql: str, *params: Any) -> Any:
    row = con.execute(sql, list(params)).fetchone()
    assert row is not None, sql
    return row[0] if len(row) == 1 else row


def at(con: duckdb.DuckDBPyConnection, table: str, columns: str, n: int, **where: Any) -> Any:
    """``columns`` of ``table`` for user 'edge' on day ``n``, plus equality filters (metric='steps')."""
    filters = "".join(f" AND {column} = ?" for column in where)
    return one(
        con,
        f"SELECT {columns} FROM {table} WHERE user_id = 'edge' AND day = ?{filters}",
        day(n),
        *where.values(),
    )


@pytest.mark.parametrize("mart", MARTS)
def test_edge_marts_match_the_numpy_reference(mart: str, edge: Edge) -> None:
    con, raw = edge
    keys, rows = reference.all_marts(raw)[mart]
    assert rows
    assert reference.assert_table_matches(con, mart, keys, rows) >= len(rows)


def test_gap_days_have_rows_with_nulls_and_zero_load(edge: Edge) -> None:
    con, _ = edge
    columns = "sleep_seconds, ln_rmssd, steps, exercise_count, training_load, device_id"
    for n in GAP_DAYS:
        assert at(con, "marts.daily_metrics", columns, n) == (None, None, None, 0, 0.0, None)
    # The 7-day rolling count after the gap only sees the days that had data.
    assert at(con, "marts.rolling_metrics", "n", 46, metric="steps", window_days=7) == 0
    assert at(con, "marts.rolling_metrics", "n", 49, metric="steps", window_days=7) == 3


def test_first_day_of_history(edge: Edge) -> None:
    con, _ = edge
    assert one(con, "SELECT min(day) FROM marts.daily_metrics WHERE user_id = 'edge'") == day(0)
    columns = "n, median, iqr, robust_sd, lower_warning, status"
    assert at(con, "marts.baselines", columns, 0, metric="ln_rmssd") == (
        0,
        None,
        None,
        None,
        None,
        "insufficient",
    )
    n, mean, sd = at(con, "marts.rolling_metrics", "n, mean, sd", 0, metric="ln_rmssd", window_days=90)
    assert n == 1 and mean is not None and sd is None
    assert len(con.execute("SELECT * FROM marts.training_load WHERE user_id = 'lonely'").fetchall()) == 1
    assert one(con, "SELECT status FROM marts.hrv_status WHERE user_id = 'lonely'") == "insufficient"
    assert one(con, "SELECT debt_seconds FROM marts.sleep_debt WHERE user_id = 'lonely'") is None


@pytest.mark.parametrize(
    ("n", "status"), [(6, "insufficient"), (7, "partial"), (20, "partial"), (21, "ready")]
)
def test_baseline_status_thresholds(n: int, status: str, edge: Edge) -> None:
    con, _ = edge
    assert at(con, "marts.baselines", "n, status", n, metric="ln_rmssd") == (n, status)


def test_hrv_status_thresholds(edge: Edge) -> None:
    con, _ = edge
    columns = "n_7d, n_baseline, normal_low IS NOT NULL, status"
    assert at(con, "marts.hrv_status", columns, 19)[1:] == (13, False, "insufficient")
    n_7d, n_baseline, has_band, status = at(con, "marts.hrv_status", columns, 20)
    assert (n_baseline, has_band) == (14, True) and status != "insufficient"
    assert at(con, "marts.hrv_status", "n_7d, status", 66) == (2, "insufficient")
    n_7d, status = at(con, "marts.hrv_status", "n_7d, status", 67)
    assert n_7d == 3 and status != "insufficient"
    assert at(con, "marts.hrv_status", "n_7d", 1) == 2  # the first days of history
    all_null = at(con, "marts.hrv_status", "n_7d, ln_rmssd_7d, cv_7d, status", 79)
    assert all_null == (0, None, None, "insufficient")
    assert at(con, "marts.rolling_metrics", "n, mean", 79, metric="ln_rmssd", window_days=7) == (0, None)


def test_iqr_zero_uses_the_minimum_spread_without_false_alarms(edge: Edge) -> None:
    con, _ = edge
    columns = "iqr, mad, lower_warning, upper_warning, upper_critical, robust_sd"
    base = at(con, "marts.baselines", columns, 81, metric="steps")
    assert base[:5] == (0.0, 0.0, 8000 - 750, 8000 + 750, 8000 + 1500)
    assert math.isclose(base[5], 500 / 1.349)
    steps_alarms = dict(
        con.execute(
            "SELECT day, severity FROM marts.anomalies WHERE user_id='edge' AND metric='steps' AND day <= ?",
            [day(83)],
        ).fetchall()
    )
    assert steps_alarms == {day(82): "warning", day(83): "critical"}
    z = at(con, "marts.anomalies", "robust_z", 83, metric="steps")
    assert math.isfinite(z) and math.isclose(z, 4000 / (500 / 1.349))


def test_mad_zero_with_iqr_falls_back_to_iqr_scale(edge: Edge) -> None:
    con, _ = edge
    base = at(con, "marts.baselines", "median, q1, q3, mad, robust_sd", 31, metric="overnight_hr_bpm")
    # 44..58 and sixteen 60s: linear quantiles (type 7) give q1 = 51.5; the "exclusive" method would give 51.
    assert base[:4] == (60.0, 51.5, 60.0, 0.0)
    assert math.isclose(base[4], 8.5 / 1.349)
    anomaly = at(con, "marts.anomalies", "severity, direction, robust_z", 31, metric="overnight_hr_bpm")
    assert anomaly[:2] == ("warning", "above") and math.isclose(anomaly[2], 15 / (8.5 / 1.349))


def test_device_switch_starts_a_new_baseline(edge: Edge) -> None:
    con, _ = edge
    n_before, status_before = at(
        con, "marts.baselines", "n, status", DEVICE_SWITCH_DAY - 1, metric="sleep_score"
    )
    after = [at(con, "marts.baselines", "n", DEVICE_SWITCH_DAY + k, metric="sleep_score") for k in range(4)]
    assert status_before == "ready" and n_before > 40
    assert after == [0, 1, 2, 3]
    assert at(con, "marts.daily_metrics", "device_id", DEVICE_SWITCH_DAY) == "BBBB0002"
    assert at(con, "marts.hrv_status", "n_baseline", DEVICE_SWITCH_DAY + 10) == 4


def test_sentinels_become_null(edge: Edge) -> None:
    con, _ = edge
    assert at(con, "marts.daily_metrics", "continuity", 5) is None
    assert at(con, "marts.daily_metrics", "overnight_hr_bpm", 33) is None
    assert at(con, "marts.daily_metrics", "breathing_rate", 8) is None
    assert at(con, "marts.daily_metrics", "hrv_rmssd_ms", 62) is None
    assert at(con, "staging.sleep", "sleep_charge", 1) is None
    assert at(con, "staging.nightly_recharge", "beat_to_beat_ms", 33) is None
    columns = "cardio_load, muscle_load, perceived_load, legacy_training_load, training_load, hr_max_bpm"
    assert one(con, f"SELECT {columns} FROM staging.exercises WHERE exercise_id='ex054'") == (
        None,
        None,
        None,
        77.25,
        77.25,
        170.0,
    )
    assert one(con, "SELECT hr_max_bpm FROM staging.exercises WHERE exercise_id='ex048'") is None
    assert at(con, "marts.daily_metrics", "training_load, cardio_load", 57) == (0.0, 0.0)


def test_day_attribution_and_device_fallback(edge: Edge) -> None:
    con, _ = edge
    columns = "day, start_time_local, start_time_utc, utc_offset_minutes"
    zoned = one(con, f"SELECT {columns} FROM staging.exercises WHERE exercise_id='zoned01'")
    assert zoned[0] == day(ZONED_EXERCISE_DAY + 1)
    assert str(zoned[1]) == f"{day(ZONED_EXERCISE_DAY + 1)} 01:30:00"
    assert str(zoned[2]) == f"{day(ZONED_EXERCISE_DAY)} 22:30:00" and zoned[3] == 180
    naive_day, naive_utc = one(
        con, "SELECT day, start_time_utc FROM staging.exercises WHERE exercise_id='ex063b'"
    )
    assert naive_day == day(NO_SLEEP_WORKOUT_DAY) and str(naive_utc).endswith("04:00:00")
    assert at(con, "marts.daily_metrics", "exercise_count, device_id", NO_SLEEP_WORKOUT_DAY) == (
        2,
        "CCCC0003",
    )
    assert at(con, "marts.daily_metrics", "interruptions", 2) == 2


def test_training_ratios_stay_null_until_28_days_and_while_chronic_load_is_zero(edge: Edge) -> None:
    con, _ = edge
    rows = con.execute(
        "SELECT day, acute_7d, chronic_28d, acwr_coupled, acwr_ewma FROM marts.training_load "
        "WHERE user_id='edge' ORDER BY day"
    ).fetchall()
    assert all(r[1] is None for r in rows[:6]) and rows[6][1] == 0.0
    assert all(r[2] is None for r in rows[:27]) and rows[27][2] == 0.0
    first_workout = day(48)  # day 45 falls in the gap
    assert all(r[3] is None and r[4] is None for r in rows if r[0] < first_workout)
    assert all(r[3] is not None and r[4] is not None for r in rows if r[0] >= first_workout)


def test_sleep_debt_is_bounded_and_skips_missing_nights(edge: Edge) -> None:
    con, _ = edge
    assert one(con, "SELECT max(debt_seconds) <= 14 * max(sleep_need_seconds) FROM marts.sleep_debt")
    assert at(con, "marts.sleep_debt", "sleep_need_seconds", 12) == 28800
    assert at(con, "marts.sleep_debt", "sleep_need_seconds", 110) == 27000
    assert at(con, "marts.sleep_debt", "nights, deficit_seconds", 46) == (7, None)


def test_untypable_rows_are_quarantined_once_with_a_reason(edge: Edge, graph: ModelGraph) -> None:
    con, _ = edge
    expected = {
        ("staging.sleep", day(BAD_SLEEP_DAY)): "sleep_score",
        ("staging.exercises", day(BAD_EXERCISE_DAY)): "duration",
        ("staging.activity", day(BAD_ACTIVITY_DAY)): "active_duration",
        ("staging.nightly_recharge", day(BAD_RECHARGE_DAY)): "heart_rate_variability_avg",
    }
    rows = con.execute("SELECT stream, day, reason FROM raw.quarantine WHERE user_id = 'edge'").fetchall()
    assert {(stream, row_day) for stream, row_day, _ in rows} == set(expected)
    for stream, row_day, reason in rows:
        assert reason.startswith(expected[(stream, row_day)]), reason
    assert at(con, "marts.daily_metrics", "sleep_score", BAD_SLEEP_DAY) is None
    # Running the slice again refreshes the rows instead of adding copies.
    run_models(con, graph, ["edge"], day(95), day(EDGE_DAYS - 1), names=["daily_metrics"])
    assert one(con, "SELECT count(*) FROM raw.quarantine WHERE user_id = 'edge'") == len(expected)


def test_staging_types_the_real_fixture_payloads(tmp_path: Path, graph: ModelGraph) -> None:
    """The real AccessLink samples (tests/fixtures/accesslink-real) type cleanly, in the documented units."""
    fixtures = ACCESSLINK_FIXTURES
    con = connect_writer(tmp_path / "w.duckdb")
    ensure_raw_schema(con)
    sleep = json.loads((fixtures / "sleep_sample.json").read_text())
    recharge = json.loads((fixtures / "recharge_sample.json").read_text())
    activity = json.loads((fixtures / "full_sample.json").read_text())[0]
    exercise = json.loads((fixtures / "exercises_real_sample.json").read_text())[0]
    insert = "INSERT INTO raw.{} VALUES ('u', ?, ?, 'test', now())"
    con.execute(insert.format("sleep"), [sleep["date"], json.dumps(sleep)])
    con.execute(insert.format("nightly_recharge"), [recharge["date"], json.dumps(recharge)])
    con.execute(insert.format("activity"), ["2025-09-26", json.dumps(activity)])
    con.execute(
        "INSERT INTO raw.exercises VALUES ('u', ?, ?, ?, 'test', now())",
        [exercise["id"], "2026-02-04", json.dumps(exercise)],
    )
    create_views(con, graph)
    for view in ("sleep", "nightly_recharge", "activity", "exercises"):
        assert one(con, f"SELECT count(*) FROM staging.{view} WHERE reject_reason IS NOT NULL") == 0
    assert one(con, "SELECT sleep_seconds, interruption_seconds FROM staging.sleep") == (4000, 1000)
    assert one(con, "SELECT hrv_rmssd_ms, ln_rmssd FROM staging.nightly_recharge") == (28.0, math.log(28))
    assert one(con, "SELECT day, active_seconds, steps FROM staging.activity") == (
        date(2025, 9, 26),
        30810.0,
        9842,
    )
    columns = "day, duration_seconds, cardio_load, muscle_load, training_load"
    assert one(con, f"SELECT {columns} FROM staging.exercises") == (
        date(2026, 2, 4),
        1230.03,
        5.69921,
        None,
        5.69921,
    )
    con.close()
