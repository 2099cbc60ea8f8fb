"""The daily_metrics columns from sleep, Nightly Recharge, activity, continuous heart rate and cardio load.

Each new column is recomputed from the raw payload JSON with plain Python (``tests/transform/reference.py``:
json, statistics) over the simulator warehouse; hand-made payloads pin the sentinels, the calendar span and
what happens to a heart-rate or cardio-load record that cannot be typed (quarantined with its reason, nothing
else of the day lost), at ingest and in staging.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_pipeline.accesslink import CARDIO_LOAD, CONTINUOUS_HR, FetchResult
from polar_pipeline.accesslink.streams import parse_batch
from polar_pipeline.ingest.streams import to_raw_batch
from polar_pipeline.sqlmodels import ModelGraph, run_models
from polar_pipeline.warehouse.raw_store import store_raw_batches
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer
from tests.support.fixtures import ACCESSLINK_FIXTURES
from tests.transform import reference
from tests.transform.conftest import SimWarehouse

NEW_COLUMNS = (
    "unrecognized_sleep_seconds",
    "short_interruption_seconds",
    "long_interruption_seconds",
    "sleep_cycles",
    "continuity_class",
    "sleep_charge",
    "sleep_rating",
    "group_duration_score",
    "group_solidity_score",
    "group_regeneration_score",
    "ans_charge_status",
    "beat_to_beat_ms",
    "active_seconds",
    "inactive_seconds",
    "distance_m",
    "daily_activity_percent",
    "inactivity_alerts",
    "hr_min_bpm",
    "hr_avg_bpm",
    "hr_max_bpm",
    "hr_sample_count",
    "polar_cardio_load",
    "polar_cardio_load_ratio",
    "polar_cardio_load_status",
    "polar_strain",
    "polar_tolerance",
)
NEVER_SET_BY_THE_SIMULATOR = {"sleep_rating"}
"""The simulated users never rate a night (Polar sends 0, "not given"): NULL on every row, checked below."""
NOT_AVAILABLE = "LOAD_STATUS_NOT_AVAILABLE"
DAY = date(2022, 9, 12)
"""The date of the real continuous heart-rate fixture; the hand-made days are numbered from it."""


@pytest.fixture(scope="module")
def sim(sim_marts: SimWarehouse) -> Iterator[tuple[duckdb.DuckDBPyConnection, dict[str, Any]]]:
    con = duckdb.connect(str(sim_marts.path), read_only=True)
    try:
        yield con, reference.load_raw(con)
    finally:
        con.close()


def test_every_new_column_is_the_raw_json_recomputed(
    sim: tuple[duckdb.DuckDBPyConnection, dict[str, Any]],
) -> None:
    con, raw = sim
    expected = {
        (row["user_id"], row["day"]): row
        for daily in reference.daily_metrics(raw).values()
        for row in daily.rows
    }
    columns, actual = reference.table_rows(con, "daily_metrics", ("user_id", "day"))
    assert set(NEW_COLUMNS) <= set(columns)
    assert set(actual) == set(expected)
    for column in NEW_COLUMNS:
        mismatches = [
            (key, want[column], actual[key][column])
            for key, want in expected.items()
            if not reference._same(want[column], actual[key][column])
        ]
        assert not mismatches, f"{column}: {len(mismatches)} mismatches, first {mismatches[:3]}"
        present = sum(row[column] is not None for row in actual.values())
        if column in NEVER_SET_BY_THE_SIMULATOR:
            assert present == 0, column
        else:
            assert present > 100, f"{column}: only {present} values; the comparison would prove little"


def test_sentinels_in_the_simulator_payloads_are_null(
    sim: tuple[duckdb.DuckDBPyConnection, dict[str, Any]],
) -> None:
    con, raw = sim
    unrated = {
        (user, p["date"]) for user, p in raw["sleep"] if p.get("sleep_rating") == 0
    }  # the simulator never rates a night
    not_available = {
        (user, p["date"]) for user, p in raw["cardio_load"] if p["cardio_load_status"] == NOT_AVAILABLE
    }
    assert len(unrated) > 1000 and len(not_available) > 100
    rows = {
        (user, day.isoformat()): values
        for user, day, *values in con.execute(
            "SELECT user_id, day, sleep_rating, polar_cardio_load, polar_cardio_load_ratio, polar_strain, "
            "polar_tolerance, polar_cardio_load_status FROM marts.daily_metrics"
        ).fetchall()
    }
    assert all(rows[key][0] is None for key in unrated)
    for key in not_available:  # -1.0 and the strain of 0.0 are "not available": NULL, the status kept
        assert rows[key] == [None, None, None, None, None, NOT_AVAILABLE], key
    # The no-signal zeros the simulator sends are not counted as readings.
    samples = [sample for _, p in raw["continuous_heart_rate"] for sample in p["heart_rate_samples"]]
    zeros = sum(sample["heart_rate"] == 0 for sample in samples)
    (counted,) = con.execute("SELECT sum(hr_sample_count) FROM marts.daily_metrics").fetchone() or (None,)
    assert zeros > 100 and counted == len(samples) - zeros


# ------------------------------------------------------------------------------------ hand-made payloads


def sleep_payload(day: date, **fields: Any) -> dict[str, Any]:
    before = day - timedelta(days=1)
    return {
        "date": day.isoformat(),
        "sleep_start_time": f"{before.isoformat()}T23:00:00.000+03:00",
        "sleep_end_time": f"{day.isoformat()}T07:00:00.000+03:00",
        "device_id": "1111AAAA",
        "continuity": 3.3,
        "light_sleep": 14400,
        "deep_sleep": 3600,
        "rem_sleep": 7200,
        "unrecognized_sleep_stage": 1350,
        "total_interruption_duration": 2250,
        "short_interruption_duration": 900,
        "long_interruption_duration": 1350,
        "sleep_score": 80,
        "sleep_cycles": 5,
        "group_duration_score": 95.0,
        "group_solidity_score": 70.1594,
        "group_regeneration_score": 78.3665,
        **fields,
    }


def recharge_payload(day: date, **fields: Any) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "heart_rate_avg": 56,
        "beat_to_beat_avg": 1068,
        "heart_rate_variability_avg": 56,
        "breathing_rate_avg": 11.6,
        "nightly_recharge_status": 3,
        "ans_charge": -2.9,
        "ans_charge_status": 2,
        **fields,
    }


def activity_payload(day: date) -> dict[str, Any]:
    return {
        "start_time": f"{day.isoformat()}T00:00",
        "end_time": f"{day.isoformat()}T23:59:59",
        "active_duration": "PT7H22M",
        "inactive_duration": "PT6H53M",
        "daily_activity": 92.81,
        "calories": 2853,
        "active_calories": 1183,
        "steps": 11138,
        "inactivity_alert_count": 2,
        "distance_from_steps": 7676.34,
    }


def heart_rate_payload(day: date, readings: list[Any]) -> dict[str, Any]:
    return {
        "polar_user": "https://polaraccesslink.com/v3/users/1",
        "date": day.isoformat(),
        "heart_rate_samples": [
            {"heart_rate": bpm, "sample_time": f"{8 + n // 12:02d}:{5 * (n % 12):02d}:08"}
            for n, bpm in enumerate(readings)
        ],
    }


def cardio_payload(day: date, load: float = 85.3) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "cardio_load_status": "PRODUCTIVE",
        "cardio_load": load,
        "strain": 54.9,
        "tolerance": 28.8,
        "cardio_load_ratio": 1.9,
        "cardio_load_level": {
            "very_low": 10.0,
            "low": 20.0,
            "medium": 40.0,
            "high": 80.0,
            "very_high": 160.0,
        },
    }


def not_available_cardio(day: date) -> dict[str, Any]:
    """A day Polar has no load for, exactly as AccessLink sends it (docs/accesslink.md §7)."""
    return {
        "date": day.isoformat(),
        "cardio_load_status": NOT_AVAILABLE,
        "cardio_load": -1.0,
        "strain": 0.0,
        "tolerance": -1.0,
        "cardio_load_ratio": -1.0,
        "cardio_load_level": {"very_low": 0.0, "low": 0.0, "medium": 0.0, "high": 0.0, "very_high": 0.0},
    }


def insert(con: duckdb.DuckDBPyConnection, stream: str, user: str, payload: dict[str, Any]) -> None:
    """One raw row keyed by the payload's own date (what the sync client does for these streams)."""
    key_day = payload.get("date") or payload["start_time"][:10]
    con.execute(
        f"INSERT INTO raw.{stream} VALUES (?, ?, ?, 'test', now())", [user, key_day, json.dumps(payload)]
    )


def daily_rows(con: duckdb.DuckDBPyConnection, user: str, columns: str) -> dict[date, tuple[Any, ...]]:
    return {
        day: tuple(values)
        for day, *values in con.execute(
            f"SELECT day, {columns} FROM marts.daily_metrics WHERE user_id = ? ORDER BY day", [user]
        ).fetchall()
    }


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_writer(tmp_path / "warehouse.duckdb")
    ensure_raw_schema(con)
    yield con
    con.close()


def test_the_real_heart_rate_fixture_and_the_sentinels_of_every_stream(
    scratch: duckdb.DuckDBPyConnection, graph: ModelGraph
) -> None:
    con = scratch
    real = json.loads((ACCESSLINK_FIXTURES / "heart_rate_sample.json").read_text())
    assert real["date"] == DAY.isoformat()
    insert(con, "cardio_load", "u", not_available_cardio(DAY - timedelta(days=1)))  # before any data
    insert(con, "continuous_heart_rate", "u", real)  # a day with only heart rate
    insert(con, "cardio_load", "u", cardio_payload(DAY + timedelta(days=1)))  # a day with only cardio load
    night = DAY + timedelta(days=2)
    insert(con, "sleep", "u", sleep_payload(night, continuity_class=0, sleep_charge=-1, sleep_rating=0))
    insert(con, "nightly_recharge", "u", recharge_payload(night, beat_to_beat_avg=0))
    insert(con, "continuous_heart_rate", "u", heart_rate_payload(night, [0, 0, 0]))  # off-wrist all day
    insert(con, "cardio_load", "u", not_available_cardio(night))
    insert(con, "cardio_load", "u", not_available_cardio(night + timedelta(days=1)))  # after all data
    run_models(con, graph, ["u"], DAY - timedelta(days=5), DAY + timedelta(days=5), names=["daily_metrics"])

    columns = (
        "hr_min_bpm, hr_avg_bpm, hr_max_bpm, hr_sample_count, polar_cardio_load, polar_cardio_load_ratio, "
        "polar_strain, polar_tolerance, polar_cardio_load_status, continuity_class, sleep_charge, "
        "sleep_rating, beat_to_beat_ms, ans_charge_status, sleep_seconds"
    )
    rows = daily_rows(con, "u", columns)
    # Not-available cardio days before the first and after the last record are no data: no rows for them.
    assert list(rows) == [DAY, DAY + timedelta(days=1), night]
    readings = [float(s["heart_rate"]) for s in real["heart_rate_samples"] if s["heart_rate"] > 0]
    assert readings == [63.0, 62.0]  # the real day's third sample is a 0: no signal
    assert rows[DAY][:4] == (min(readings), statistics.fmean(readings), max(readings), len(readings))
    assert rows[DAY][4:] == (None,) * 5 + (None, None, None, None, None, None)
    assert rows[DAY + timedelta(days=1)][:9] == (None, None, None, None, 85.3, 1.9, 54.9, 28.8, "PRODUCTIVE")
    # The night: every sentinel NULL, the rest of it kept.
    assert rows[night] == (
        None,
        None,
        None,
        0,
        None,
        None,
        None,
        None,
        NOT_AVAILABLE,
        None,
        None,
        None,
        None,
        2,
        26550,
    )


def test_bad_heart_rate_and_cardio_payloads_are_quarantined_in_staging_and_nothing_else_is_lost(
    scratch: duckdb.DuckDBPyConnection, graph: ModelGraph
) -> None:
    con = scratch
    good_day = DAY + timedelta(days=1)
    insert(con, "sleep", "u", sleep_payload(DAY))
    insert(con, "activity", "u", activity_payload(DAY))
    insert(con, "continuous_heart_rate", "u", heart_rate_payload(DAY, [60, "80", 0]))  # a string bpm
    insert(con, "cardio_load", "u", cardio_payload(DAY, load=-5.0))  # -1 is the only negative allowed
    insert(con, "continuous_heart_rate", "u", heart_rate_payload(good_day, [60, 70, 0, 80]))
    insert(con, "cardio_load", "u", cardio_payload(good_day))
    (run,) = run_models(con, graph, ["u"], DAY, good_day, names=["daily_metrics"])
    assert run.rows_quarantined == 2

    quarantined = {
        stream: (record_key, reason, json.loads(payload))
        for stream, record_key, reason, payload in con.execute(
            "SELECT stream, record_key, reason, payload FROM raw.quarantine"
        ).fetchall()
    }
    assert quarantined == {
        "staging.continuous_heart_rate": (
            DAY.isoformat(),
            "heart_rate_samples: heart_rate must be an integer 20..250 bpm (0 = no signal)",
            heart_rate_payload(DAY, [60, "80", 0]),
        ),
        "staging.cardio_load": (
            DAY.isoformat(),
            "cardio_load: expected a number >= 0 (-1 = not available)",
            cardio_payload(DAY, load=-5.0),
        ),
    }
    columns = (
        "sleep_seconds, short_interruption_seconds, steps, inactivity_alerts, hr_avg_bpm, polar_cardio_load"
    )
    rows = daily_rows(con, "u", columns)
    # The bad day keeps its sleep and activity; only the two bad records are missing from it.
    assert rows[DAY] == (26550, 900, 11138, 2, None, None)
    assert rows[good_day] == (None, None, None, None, statistics.fmean([60, 70, 80]), 85.3)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (heart_rate_payload(DAY, [60, 300]), "heart_rate must be an integer 20..250"),
        (heart_rate_payload(DAY, [60, 61.5]), "heart_rate must be an integer 20..250"),
        (heart_rate_payload(DAY, [60, 10]), "heart_rate must be an integer 20..250"),
        (
            {"date": DAY.isoformat(), "heart_rate_samples": [{"heart_rate": 60, "sample_time": "25:00:00"}]},
            "sample_time HH:MM:SS",
        ),
        ({"date": DAY.isoformat(), "heart_rate_samples": [{"heart_rate": 60}]}, "sample_time HH:MM:SS"),
        ({"date": DAY.isoformat(), "heart_rate_samples": {"08:00:00": 60}}, "expected a JSON array"),
        ({"date": "12.09.2022", "heart_rate_samples": []}, "date: expected YYYY-MM-DD"),
    ],
)
def test_the_heart_rate_view_refuses_what_the_client_refuses(
    scratch: duckdb.DuckDBPyConnection, graph: ModelGraph, payload: dict[str, Any], reason: str
) -> None:
    con = scratch
    con.execute(
        "INSERT INTO raw.continuous_heart_rate VALUES ('u', ?, ?, 'test', now())", [DAY, json.dumps(payload)]
    )
    run_models(con, graph, ["u"], DAY, DAY, names=["daily_metrics"])
    (found,) = con.execute("SELECT reason FROM raw.quarantine").fetchall()
    assert reason in found[0]
    # The sync client refuses the same record.
    assert parse_batch(CONTINUOUS_HR, payload).rejected


def test_a_bad_record_in_a_fetch_is_quarantined_at_ingest_and_the_good_ones_stored(
    scratch: duckdb.DuckDBPyConnection,
) -> None:
    con = scratch
    good_hr, bad_hr = heart_rate_payload(DAY, [60, 0]), heart_rate_payload(DAY + timedelta(days=1), [60, 999])
    good_load, bad_load = cardio_payload(DAY), cardio_payload(DAY + timedelta(days=1)) | {"strain": -3.0}
    fetched_at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for stream, parser, body in (
        ("continuous_heart_rate", CONTINUOUS_HR, {"heart_rates": [good_hr, bad_hr]}),
        ("cardio_load", CARDIO_LOAD, [good_load, bad_load]),
    ):
        parsed = parse_batch(parser, body)
        result = FetchResult(parsed.records, parsed.rejected, 1, None, 0)
        counts = store_raw_batches(
            con, stream, {"u": to_raw_batch(stream, result)}, source="test", fetched_at=fetched_at
        )
        assert (counts.received, counts.changed, counts.quarantined) == (1, 1, 1)
    stored = {
        stream: [json.loads(text) for (text,) in con.execute(f"SELECT payload FROM raw.{stream}").fetchall()]
        for stream in ("continuous_heart_rate", "cardio_load")
    }
    assert stored == {"continuous_heart_rate": [good_hr], "cardio_load": [good_load]}
    rows = con.execute(
        "SELECT stream, day, record_key, reason, payload FROM raw.quarantine ORDER BY stream"
    ).fetchall()
    bad_day = DAY + timedelta(days=1)
    assert [(stream, day, key, json.loads(payload)) for stream, day, key, _, payload in rows] == [
        ("cardio_load", bad_day, bad_day.isoformat(), bad_load),
        ("continuous_heart_rate", bad_day, bad_day.isoformat(), bad_hr),
    ]
    assert "strain" in rows[0][3] and "heart_rate" in rows[1][3] and "999" in rows[1][3]
