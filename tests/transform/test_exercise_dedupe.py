"""A workout arriving both from the AccessLink sync and from a Polar account export counts once (issue 20).

The rule (marts/counted_exercises.sql, docs/polar-export.md "Workouts from both sources"): an export session
whose local start is within 60 s of an AccessLink workout's and whose duration is within 1 % of it is the same
workout; the AccessLink row is kept (with export_exercise_id naming the export row), the export row is counted
nowhere. Expected values are computed here from the payloads written, never with the models' SQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_pipeline.ingest.streams import SOURCE as ACCESSLINK_SOURCE
from polar_pipeline.polar_export.importer import SOURCE as EXPORT_SOURCE
from polar_pipeline.sqlmodels import ModelGraph, run_models
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.writer import connect_writer

DAY = date(2026, 2, 4)
START = datetime(2026, 2, 4, 7, 30, 0)
SECONDS = 3600.0


def workout(exercise_id: str, start: datetime, seconds: float, cardio_load: float) -> dict[str, Any]:
    """An AccessLink-shaped workout (what the sync stores, and what the export importer writes)."""
    return {
        "id": exercise_id,
        "device_id": "0BA9FA32",
        "start_time": start.isoformat(),
        "start_time_utc_offset": 60,
        "duration": f"PT{seconds:.3f}S",
        "sport": "RUNNING",
        "detailed_sport_info": "RUNNING",
        "calories": 600,
        "training_load_pro": {"cardio-load": cardio_load},
    }


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect_writer(tmp_path / "warehouse.duckdb")
    ensure_raw_schema(con)
    yield con
    con.close()


def store(con: duckdb.DuckDBPyConnection, source: str, *payloads: dict[str, Any]) -> None:
    for payload in payloads:
        con.execute(
            "INSERT INTO raw.exercises VALUES ('u', ?, ?, ?, ?, now())",
            [payload["id"], date.fromisoformat(payload["start_time"][:10]), json.dumps(payload), source],
        )


def build(con: duckdb.DuckDBPyConnection, graph: ModelGraph, first: date = DAY, last: date = DAY) -> None:
    run_models(con, graph, ["u"], first, last, names=["daily_metrics", "exercise_sessions"])


def daily(con: duckdb.DuckDBPyConnection, day: date = DAY) -> tuple[Any, ...]:
    row = con.execute(
        "SELECT exercise_count, exercise_seconds, training_load FROM marts.daily_metrics WHERE day = ?", [day]
    ).fetchone()
    assert row is not None
    return row


def sessions(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(
        "SELECT exercise_id, export_exercise_id FROM marts.exercises ORDER BY exercise_id"
    ).fetchall()


def test_the_same_session_from_both_sources_counts_once_as_the_accesslink_row(
    warehouse: duckdb.DuckDBPyConnection, graph: ModelGraph
) -> None:
    synced = workout("al01", START, SECONDS, 80.0)
    exported = workout("export:aa11", START + timedelta(seconds=30), SECONDS * 1.005, 81.0)
    store(warehouse, ACCESSLINK_SOURCE, synced)
    store(warehouse, EXPORT_SOURCE, exported)
    build(warehouse, graph)
    assert daily(warehouse) == (1, pytest.approx(SECONDS), pytest.approx(80.0))
    assert sessions(warehouse) == [("al01", "export:aa11")]
    # staging keeps both rows and says where each came from.
    assert warehouse.execute("SELECT exercise_id, source FROM staging.exercises ORDER BY 1").fetchall() == [
        ("al01", "accesslink"),
        ("export:aa11", "export"),
    ]


@pytest.mark.parametrize(
    ("start_shift", "duration_factor"),
    [(90, 1.005), (-90, 1.0), (30, 1.02), (0, 0.98)],
    ids=["start+90s", "start-90s", "duration+2%", "duration-2%"],
)
def test_sessions_too_far_apart_count_twice(
    warehouse: duckdb.DuckDBPyConnection, graph: ModelGraph, start_shift: int, duration_factor: float
) -> None:
    store(warehouse, ACCESSLINK_SOURCE, workout("al01", START, SECONDS, 80.0))
    store(
        warehouse,
        EXPORT_SOURCE,
        workout("export:aa11", START + timedelta(seconds=start_shift), SECONDS * duration_factor, 81.0),
    )
    build(warehouse, graph)
    assert daily(warehouse) == (2, pytest.approx(SECONDS * (1 + duration_factor)), pytest.approx(161.0))
    assert sessions(warehouse) == [("al01", None), ("export:aa11", None)]


def test_an_export_only_workout_counts_once(warehouse: duckdb.DuckDBPyConnection, graph: ModelGraph) -> None:
    store(warehouse, EXPORT_SOURCE, workout("export:aa11", START, SECONDS, 81.0))
    build(warehouse, graph)
    assert daily(warehouse) == (1, pytest.approx(SECONDS), pytest.approx(81.0))
    assert sessions(warehouse) == [("export:aa11", None)]


def test_two_accesslink_workouts_close_together_are_never_merged(
    warehouse: duckdb.DuckDBPyConnection, graph: ModelGraph
) -> None:
    store(
        warehouse,
        ACCESSLINK_SOURCE,
        workout("al01", START, SECONDS, 80.0),
        workout("al02", START + timedelta(seconds=20), SECONDS, 70.0),
    )
    build(warehouse, graph)
    assert daily(warehouse) == (2, pytest.approx(2 * SECONDS), pytest.approx(150.0))
    assert sessions(warehouse) == [("al01", None), ("al02", None)]


def test_the_nearest_accesslink_start_absorbs_the_export(
    warehouse: duckdb.DuckDBPyConnection, graph: ModelGraph
) -> None:
    store(
        warehouse,
        ACCESSLINK_SOURCE,
        workout("al01", START, SECONDS, 80.0),
        workout("al02", START + timedelta(seconds=50), SECONDS, 70.0),
    )
    store(warehouse, EXPORT_SOURCE, workout("export:aa11", START + timedelta(seconds=40), SECONDS, 75.0))
    build(warehouse, graph)
    assert daily(warehouse) == (2, pytest.approx(2 * SECONDS), pytest.approx(150.0))
    assert sessions(warehouse) == [("al01", None), ("al02", "export:aa11")]


def test_a_match_across_midnight_holds_whichever_day_a_run_covers(
    warehouse: duckdb.DuckDBPyConnection, graph: ModelGraph
) -> None:
    """AccessLink starts 20 s before midnight, the export 20 s after: one workout, on the first day."""
    midnight = datetime.combine(DAY + timedelta(days=1), datetime.min.time())
    store(warehouse, ACCESSLINK_SOURCE, workout("al01", midnight - timedelta(seconds=20), SECONDS, 80.0))
    store(warehouse, EXPORT_SOURCE, workout("export:aa11", midnight + timedelta(seconds=20), SECONDS, 81.0))
    build(warehouse, graph, DAY + timedelta(days=1), DAY + timedelta(days=1))  # only the export's day
    assert sessions(warehouse) == []
    build(warehouse, graph, DAY, DAY)  # only the AccessLink day
    assert sessions(warehouse) == [("al01", "export:aa11")]
    assert daily(warehouse) == (1, pytest.approx(SECONDS), pytest.approx(80.0))
