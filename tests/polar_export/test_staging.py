"""Imported records go through the real staging views: typed columns equal the values in the export files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from polar_pipeline.polar_export.importer import read_export, store_export

FETCHED_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _one(con: duckdb.DuckDBPyConnection, query: str) -> dict[str, object]:
    frame = con.sql(query).pl()
    assert frame.height == 1, frame
    row: dict[str, object] = frame.row(0, named=True)
    return row


def test_sleep_result_and_score_typed(warehouse: duckdb.DuckDBPyConnection, export_zip: Path) -> None:
    store_export(warehouse, "u1", read_export(export_zip), fetched_at=FETCHED_AT)
    row = _one(warehouse, "SELECT * FROM staging.sleep WHERE user_id = 'u1'")
    assert row["reject_reason"] is None
    assert row["day"] == date(2025, 12, 10)
    assert row["sleep_start"] == datetime(2025, 12, 10, 0, 27, 0, 715000, tzinfo=UTC)
    assert row["sleep_end"] == datetime(2025, 12, 10, 8, 54, 0, 715000, tzinfo=UTC)
    assert (row["light_sleep_seconds"], row["deep_sleep_seconds"], row["rem_sleep_seconds"]) == (
        3 * 3600 + 56 * 60 + 30,
        3600 + 56 * 60,
        2 * 3600 + 9 * 60 + 30,
    )
    assert row["unrecognized_sleep_seconds"] == 0
    assert (
        row["interruption_seconds"],
        row["short_interruption_seconds"],
        row["long_interruption_seconds"],
    ) == (
        1500,
        1080,
        420,
    )
    assert (row["continuity"], row["continuity_class"], row["sleep_goal_seconds"]) == (3.8, 3, 7 * 3600)
    assert (row["sleep_rating"], row["sleep_cycles"], row["device_id"]) == (4, 2, "ABCD1234")
    assert (row["sleep_score"], row["sleep_charge"]) == (84, 4)  # 83.6 rounds to AccessLink's integer score
    assert (row["group_duration_score"], row["group_solidity_score"], row["group_regeneration_score"]) == (
        91.5,
        72.25,
        80.0,
    )
    assert (
        row["interruptions"] == 1
    )  # one wake run between sleep stages; the leading and trailing WAKE are not
    assert row["heart_rate_avg_bpm"] is None


def test_recharge_typed_and_nan_is_null(warehouse: duckdb.DuckDBPyConnection, export_zip: Path) -> None:
    store_export(warehouse, "u1", read_export(export_zip), fetched_at=FETCHED_AT)
    frame = warehouse.sql("SELECT * FROM staging.nightly_recharge ORDER BY day").pl()
    first, second = frame.rows(named=True)
    assert first["reject_reason"] is None and second["reject_reason"] is None
    assert first["day"] == date(2025, 2, 27)
    assert (first["hrv_rmssd_ms"], first["beat_to_beat_ms"]) == (48, 1012)
    assert first["overnight_hr_bpm"] == round(60000 / 1012)
    assert first["breathing_rate"] == round(60000 / 4210, 1)
    assert (first["nightly_recharge_status"], first["ans_charge"], first["ans_charge_status"]) == (4, 2.4, 4)
    # "NaN" string and bare NaN token → NULL, not 0 and not a rejected row
    assert second["hrv_rmssd_ms"] is None and second["ln_rmssd"] is None and second["ans_charge"] is None
    assert (second["nightly_recharge_status"], second["ans_charge_status"], second["beat_to_beat_ms"]) == (
        2,
        2,
        1000,
    )


def test_activity_typed(warehouse: duckdb.DuckDBPyConnection, export_zip: Path) -> None:
    store_export(warehouse, "u1", read_export(export_zip), fetched_at=FETCHED_AT)
    row = _one(warehouse, "SELECT * FROM staging.activity")
    assert row["reject_reason"] is None and row["day"] == date(2014, 10, 27)
    assert (row["steps"], row["total_calories"], row["distance_from_steps_m"]) == (7088, 2160, 5233.99)
    assert row["inactivity_alerts"] == 2
    assert (row["active_seconds"], row["inactive_seconds"]) == (3240 + 3600, 9.5 * 3600)


def test_exercises_typed(warehouse: duckdb.DuckDBPyConnection, export_zip: Path) -> None:
    store_export(warehouse, "u1", read_export(export_zip), fetched_at=FETCHED_AT)
    frame = warehouse.sql("SELECT * FROM staging.exercises ORDER BY start_time_local").pl()
    assert frame["reject_reason"].to_list() == [None, None, None]
    old, real, new = frame.rows(named=True)
    assert (real["day"], real["sport"], real["duration_seconds"]) == (date(2022, 6, 18), "OTHER", 2071.005)
    assert (real["hr_avg_bpm"], real["hr_max_bpm"], real["distance_m"], real["calories"]) == (
        160,
        187,
        0,
        447,
    )
    assert real["start_time_utc"] == datetime(2022, 6, 19, 1, 50, 2)  # local − (−420 min)
    assert (real["cardio_load"], real["muscle_load"]) == (79.3511, None)
    assert (new["day"], new["duration_seconds"], new["distance_m"], new["running_index"]) == (
        date(2025, 8, 16),
        4455.001,
        12034.5,
        52,
    )
    assert (old["day"], old["duration_seconds"], old["calories"], old["utc_offset_minutes"]) == (
        date(2017, 1, 23),
        2753.875,
        498,
        60,
    )
    assert (old["hr_avg_bpm"], old["hr_max_bpm"], old["sport"], old["has_route"]) == (
        138,
        164,
        "RUNNING",
        True,
    )


def test_second_store_changes_nothing(warehouse: duckdb.DuckDBPyConnection, export_zip: Path) -> None:
    first = store_export(warehouse, "u1", read_export(export_zip), fetched_at=FETCHED_AT)
    assert first.changed == 3 + 1 + 1 + 2 + 2
    assert {stream: counts.received for stream, counts in first.stored.items()} == {
        "exercises": 3,
        "activity": 1,
        "sleep": 1,
        "nightly_recharge": 2,
        "continuous_heart_rate": 2,
    }
    again = store_export(
        warehouse, "u1", read_export(export_zip), fetched_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    assert again.changed == 0 and again.quarantined == 0
    sources = warehouse.sql("SELECT DISTINCT source FROM raw.exercises").fetchall()
    assert sources == [("export",)]


def test_heart_rate_day_typed(warehouse: duckdb.DuckDBPyConnection, export_zip: Path) -> None:
    store_export(warehouse, "u1", read_export(export_zip), fetched_at=FETCHED_AT)
    row = _one(warehouse, "SELECT * FROM staging.continuous_heart_rate WHERE day = DATE '2025-08-05'")
    assert row["reject_reason"] is None
    assert (row["hr_min_bpm"], row["hr_max_bpm"], row["hr_sample_count"]) == (58, 72, 3)
    assert row["hr_avg_bpm"] == (58 + 64 + 72) / 3
