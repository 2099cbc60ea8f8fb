"""The sample store and what a publish copies: series read back identical, written once, never per publish."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from polar_pipeline.warehouse import samples as samples_module
from polar_pipeline.warehouse.raw_store import RawBatch, RawRecord, store_raw_batches
from polar_pipeline.warehouse.schema import ensure_raw_schema
from polar_pipeline.warehouse.snapshot import publish_snapshot
from polar_pipeline.warehouse.writer import connect_writer
from tests.support.fixtures import ACCESSLINK_FIXTURES

EXERCISES: list[dict[str, Any]] = json.loads((ACCESSLINK_FIXTURES / "exercises_real_sample.json").read_text())
SERIES = "exercise_id, sample_type, recording_rate_seconds, sample_values"
NIGHT: dict[str, Any] = json.loads((ACCESSLINK_FIXTURES / "sleep_sample.json").read_text())


def _store(con: duckdb.DuckDBPyConnection, exercises: list[dict[str, Any]], at: datetime) -> None:
    night_day = date.fromisoformat(NIGHT["date"])
    batches = {
        "exercises": [
            RawRecord(e["id"], date.fromisoformat(e["start_time"][:10]), json.dumps(e)) for e in exercises
        ],
        "sleep": [RawRecord(NIGHT["date"], night_day, json.dumps(NIGHT))],
    }
    for stream, records in batches.items():
        store_raw_batches(con, stream, {"u1": RawBatch(records)}, source="test", fetched_at=at)


def _expected_exercise_samples(exercises: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """An independent parse of the payloads: comma-separated values, an empty item is a gap."""
    return sorted(
        (
            exercise["id"],
            str(series["sample_type"]),
            series.get("recording_rate"),
            [None if v == "" else float(v) for v in series["data"].split(",")],
        )
        for exercise in exercises
        for series in exercise.get("samples", [])
    )


def _read(snapshot: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_series_read_back_identical_from_the_snapshot_and_are_written_once(tmp_path: Path) -> None:
    warehouse, snapshots, samples = tmp_path / "w.duckdb", tmp_path / "serving", tmp_path / "samples"
    con = connect_writer(warehouse)
    ensure_raw_schema(con)
    _store(con, EXERCISES, datetime(2026, 1, 1, tzinfo=UTC))
    first = publish_snapshot(con, snapshots, samples_dir=samples)

    got = _read(
        first.path,
        f"SELECT {SERIES} FROM samples.exercise_samples ORDER BY ALL",
    )
    assert sorted(got) == _expected_exercise_samples(EXERCISES) and len(got) == 15
    series = dict(
        (name, (times, values))
        for name, times, values in _read(
            first.path, "SELECT series, clock_times, sample_values FROM samples.sleep_series"
        )
    )
    for name in ("hypnogram", "heart_rate_samples"):
        assert series[name] == (list(NIGHT[name]), [float(v) for v in NIGHT[name].values()])  # payload order

    # The snapshot holds what readers need, not the raw payloads.
    relations = set(
        _read(first.path, "SELECT table_schema || '.' || table_name FROM information_schema.tables")
    )
    assert ("raw.exercises",) not in relations and ("raw.quarantine",) in relations
    segments = sorted(samples.rglob("*.parquet"))
    stamps = {path: path.stat().st_mtime_ns for path in segments}

    # Nothing new: another publish, and re-storing the same payloads, write no segment and change nothing.
    _store(con, EXERCISES, datetime(2026, 1, 2, tzinfo=UTC))
    second = publish_snapshot(con, snapshots, samples_dir=samples)
    assert sorted(samples.rglob("*.parquet")) == segments
    assert {path: path.stat().st_mtime_ns for path in segments} == stamps
    assert _read(second.path, "SELECT * FROM samples.exercise_samples ORDER BY ALL") == _read(
        first.path, "SELECT * FROM samples.exercise_samples ORDER BY ALL"
    )

    # A changed payload adds one segment, and the view shows only the record's newest series.
    changed = json.loads(json.dumps(EXERCISES))
    changed[0]["samples"] = changed[0]["samples"][:1]
    _store(con, changed, datetime(2026, 1, 3, tzinfo=UTC))
    third = publish_snapshot(con, snapshots, samples_dir=samples)
    con.close()
    assert len(list((samples / "exercise_samples").glob("*.parquet"))) == 2
    got = _read(
        third.path,
        f"SELECT {SERIES} FROM samples.exercise_samples",
    )
    assert sorted(got) == _expected_exercise_samples(changed)


def test_a_snapshot_before_any_series_has_empty_typed_views(tmp_path: Path) -> None:
    con = connect_writer(tmp_path / "w.duckdb")
    ensure_raw_schema(con)
    info = publish_snapshot(con, tmp_path / "serving", samples_dir=tmp_path / "samples")
    con.close()
    assert _read(info.path, "SELECT count(*) FROM samples.exercise_samples") == [(0,)]
    columns = _read(
        info.path, "SELECT column_name FROM information_schema.columns WHERE table_name = 'sleep_series'"
    )
    assert [c for (c,) in columns] == [
        "user_id",
        "day",
        "fetched_at",
        "series",
        "clock_times",
        "sample_values",
    ]


class _Killed(BaseException):
    """Stands for SIGKILL at a pause point: nothing after it runs (not even ``except Exception``)."""


def test_a_segment_left_by_a_crash_before_its_state_row_is_not_served_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse, snapshots, samples = tmp_path / "w.duckdb", tmp_path / "serving", tmp_path / "samples"
    con = connect_writer(warehouse)
    ensure_raw_schema(con)
    _store(con, EXERCISES, datetime(2026, 1, 1, tzinfo=UTC))
    publish_snapshot(con, snapshots, samples_dir=samples)

    # Every exercise changes (new fetched_at); the publish dies after renaming the segment into place.
    every = json.loads(json.dumps(EXERCISES))
    for exercise in every:
        exercise["detailed_sport_info"] = "RUNNING_ROAD"
    _store(con, every, datetime(2026, 1, 2, tzinfo=UTC))

    def die_at(name: str) -> None:
        if name == "publish:segment-written":
            raise _Killed(name)

    monkeypatch.setattr(samples_module, "pause_point", die_at)
    with pytest.raises(_Killed):
        publish_snapshot(con, snapshots, samples_dir=samples)
    monkeypatch.undo()

    # Then one exercise changes again: the next segment covers the first change too.
    again = json.loads(json.dumps(every))
    again[0]["samples"] = again[0]["samples"][:1]
    _store(con, again, datetime(2026, 1, 3, tzinfo=UTC))
    info = publish_snapshot(con, snapshots, samples_dir=samples)
    recorded = {name for (name,) in con.execute("SELECT segment FROM raw.sample_segments").fetchall()}
    con.close()
    assert sorted(_read(info.path, f"SELECT {SERIES} FROM samples.exercise_samples")) == (
        _expected_exercise_samples(again)
    )
    assert {path.name for path in samples.rglob("*") if path.is_file()} == recorded
