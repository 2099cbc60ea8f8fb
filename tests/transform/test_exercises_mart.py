"""marts.exercises: one typed row per workout, what GET /exercises and /exercises/{id} read.

Every column is recomputed from the raw payload JSON in plain Python (``reference.exercise_sessions``): over
the simulator warehouse (workouts without sample series), over the served warehouse (workouts synced by the
real pipeline, with their series, so ascent, descent and has_samples are exercised), and on hand-made payloads
with the specification's kebab-case keys and a zone that cannot be typed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_pipeline.accesslink import EXERCISE
from polar_pipeline.accesslink.streams import parse_batch
from polar_pipeline.sqlmodels import ModelGraph, run_models
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer
from tests.conftest import TEST_TODAY
from tests.support.fixtures import ACCESSLINK_FIXTURES
from tests.support.served import Served
from tests.transform import reference
from tests.transform.conftest import SimWarehouse

COLUMNS = (
    "user_id",
    "day",
    "exercise_id",
    "start_time_local",
    "start_time_utc",
    "utc_offset_minutes",
    "device_id",
    "sport",
    "detailed_sport_info",
    "duration_seconds",
    "distance_m",
    "calories",
    "hr_avg_bpm",
    "hr_max_bpm",
    "cardio_load",
    "muscle_load",
    "perceived_load",
    "training_load",
    "ascent_m",
    "descent_m",
    "running_index",
    "heart_rate_zones",
    "has_samples",
    "has_route",
)
MART_ROWS = f"SELECT {', '.join(COLUMNS)} FROM marts.exercises"
RAW_ROWS = "SELECT user_id, payload::VARCHAR FROM raw.exercises"


def compare(
    expected: Mapping[tuple[str, str], dict[str, Any]], rows: list[tuple[Any, ...]]
) -> dict[str, int]:
    """Every row and column agree (numbers to 1e-9, zones as parsed JSON); values present per column."""
    actual = {}
    for values in rows:
        row = dict(zip(COLUMNS, values, strict=True))
        row["heart_rate_zones"] = (
            None if row["heart_rate_zones"] is None else json.loads(row["heart_rate_zones"])
        )
        actual[(row.pop("user_id"), row.pop("exercise_id"))] = row
    assert set(actual) == set(expected)
    present = dict.fromkeys(COLUMNS[3:], 0) | {"day": 0}
    mismatches = []
    for key, want in expected.items():
        assert set(want) == set(COLUMNS) - {"user_id", "exercise_id"}
        for column, value in want.items():
            got = actual[key][column]
            numbers = isinstance(value, int | float) and not isinstance(value, bool)
            same = reference._same(value, got) if numbers else got == value
            if not same:
                mismatches.append((key, column, value, got))
            present[column] += got is not None and got is not False
    assert not mismatches, f"{len(mismatches)} mismatches, first {mismatches[:3]}"
    return present


def test_every_column_is_the_raw_json_recomputed_on_the_simulator_warehouse(sim_marts: SimWarehouse) -> None:
    con = duckdb.connect(str(sim_marts.path), read_only=True)
    try:
        raw = [(user, json.loads(text)) for user, text in con.execute(RAW_ROWS).fetchall()]
        rows = con.execute(MART_ROWS).fetchall()
    finally:
        con.close()
    expected = reference.exercise_sessions({"exercises": raw})
    assert len(expected) == len(raw) > 500
    present = compare(expected, rows)
    # Not vacuous: the simulator sends zones, running indexes and route flags (no series: collected without).
    for column in (
        "start_time_utc",
        "distance_m",
        "hr_avg_bpm",
        "cardio_load",
        "running_index",
        "heart_rate_zones",
    ):
        assert present[column] > 100, column
    assert present["has_route"] > 10 and present["muscle_load"] > 10
    assert present["ascent_m"] == present["has_samples"] == 0


def test_series_give_ascent_descent_and_has_samples_on_the_pipeline_warehouse(served: Served) -> None:
    raw = [(user, json.loads(text)) for user, text in served.warehouse_query(RAW_ROWS)]
    expected = reference.exercise_sessions({"exercises": raw})
    rows = served.warehouse_query(MART_ROWS)
    # The served warehouse was synced as two 28-day windows. A workout late on the first window's last day
    # was uploaded after that sync; the second sync stored it, but built marts for its own days only.
    first_window_end = TEST_TODAY - timedelta(days=28)
    built = {(row[0], row[2]) for row in rows}
    assert all(expected[key]["day"] == first_window_end for key in set(expected) - built)
    expected = {key: row for key, row in expected.items() if key in built}
    present = compare(expected, rows)
    with_altitude = [key for key, row in expected.items() if row["ascent_m"] is not None]
    assert present["has_samples"] == len(expected) > 5
    assert len(with_altitude) > 3 and present["ascent_m"] == len(with_altitude)
    assert any(expected[key]["ascent_m"] > 0 for key in with_altitude)
    # The API reads exactly this table from the snapshot.
    assert sorted(served.snapshot_query(MART_ROWS)) == sorted(served.warehouse_query(MART_ROWS))


DAY = date(2026, 2, 4)


def kebab_exercise() -> dict[str, Any]:
    """The specification's spellings: running-index, zone limits and in-zone, a sample-type sent as text."""
    exercise = json.loads((ACCESSLINK_FIXTURES / "exercises_real_sample.json").read_text())[0]
    exercise = {key: value for key, value in exercise.items() if key not in ("heart_rate_zones", "samples")}
    return exercise | {
        "id": "kebab01",
        "running-index": 51,
        "heart_rate_zones": [
            {"index": 1, "lower-limit": 115, "upper-limit": 134, "in-zone": "PT12S"},
            {"index": 0, "lower-limit": 96, "upper-limit": 115, "in-zone": "PT4M14S"},
        ],
        "samples": [
            {"recording-rate": 1, "sample-type": "0", "data": "96,97,98,99"},
            {"recording-rate": 1, "sample-type": "3", "data": "45.0,45.6,null,46.2,46.0,44.9,null,45.3,47.0"},
        ],
    }


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_writer(tmp_path / "warehouse.duckdb")
    ensure_raw_schema(con)
    yield con
    con.close()


def test_both_key_spellings_and_a_zone_that_cannot_be_typed(
    scratch: duckdb.DuckDBPyConnection, graph: ModelGraph
) -> None:
    con = scratch
    good = kebab_exercise()
    bad = kebab_exercise() | {
        "id": "badzone1",
        "heart_rate_zones": [{"index": 0, "lower-limit": 130, "upper-limit": 120, "in-zone": "PT1M"}],
    }
    assert parse_batch(EXERCISE, [good]).records and parse_batch(EXERCISE, [bad]).rejected  # as the client
    for payload in (good, bad):
        con.execute(
            "INSERT INTO raw.exercises VALUES ('u', ?, ?, ?, 'test', now())",
            [payload["id"], DAY, json.dumps(payload)],
        )
    (run,) = run_models(
        con, graph, ["u"], DAY - timedelta(days=1), DAY + timedelta(days=1), names=["exercise_sessions"]
    )
    assert (run.relation, run.rows_written, run.rows_quarantined) == ("marts.exercises", 1, 1)
    compare(reference.exercise_sessions({"exercises": [("u", good)]}), con.execute(MART_ROWS).fetchall())
    zones, running_index, ascent, descent = (
        con.execute(
            "SELECT heart_rate_zones, running_index, ascent_m, descent_m FROM marts.exercises"
        ).fetchone()
        or ()
    )
    assert json.loads(zones) == [
        {"index": 0, "lower_limit_bpm": 96, "upper_limit_bpm": 115, "in_zone_seconds": 254.0},
        {"index": 1, "lower_limit_bpm": 115, "upper_limit_bpm": 134, "in_zone_seconds": 12.0},
    ]
    assert running_index == 51
    # 45.0 -> 46.2 climbs 1.2, 46.2 -> 44.9 falls 1.3, 44.9 -> 47.0 climbs 2.1; the small steps never count.
    assert ascent == pytest.approx(3.3) and descent == pytest.approx(1.3)
    ((stream, key, reason),) = con.execute("SELECT stream, record_key, reason FROM raw.quarantine").fetchall()
    assert (stream, key) == ("staging.exercises", "badzone1") and reason.startswith("heart_rate_zones:")
